package reach_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/examples/internal/reach"
)

func TestReadVerdictLog(t *testing.T) {
	got, st, err := reach.ReadVerdictLog("empty", strings.NewReader("\n\n"))
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, reach.LogStats{}, st)

	log := `{"time":"2026-12-03T18:00:00Z","node":"a","src":"x/a","dst":"10.0.0.9","port":53,"protocol":"UDP","verdict":"deny","tier":"","policy":"","rule":"isolated"}
{"time":"2026-12-03T18:00:00Z","node":"a","src":"x/a","dst":"10.0.0.9","port":0,"protocol":"ICMP","verdict":"deny","tier":"","policy":"","rule":"isolated"}
{"time":"2026-12-03T18:00:01Z","node":"b","src":"x/a","dst":"10.0.0.9","port":53,"protocol":"UDP","verdict":"allow","tier":"","policy":"","rule":""}
{"time":"2026-12-03T18:00:01Z","node":"b","src":"fd00::1","dst":"x/b","port":80,"protocol":"SCTP","verdict":"allow","tier":"","policy":"","rule":""}
`
	got, st, err = reach.ReadVerdictLog("v.jsonl", strings.NewReader(log))
	require.NoError(t, err)
	assert.Equal(t, reach.LogStats{Records: 4, Skipped: 1}, st)
	require.Len(t, got, 2)
	assert.Equal(t, "x/a 10.0.0.9 53 UDP", got[0].Flow.Src.String()+" "+got[0].Flow.Dst.String()+" 53 "+got[0].Flow.Protocol.String())
	assert.Equal(t, [3]int{2, 1, 1}, [3]int{got[0].Count, got[0].Allowed, got[0].Denied})
	assert.True(t, got[1].Flow.Src.IP.IsValid())

	_, _, err = reach.ReadVerdictLog("v.jsonl", strings.NewReader(`{"src":"a/b","dst":"nope","port":1,"protocol":"TCP","verdict":"deny"}`+"\n"+`{"src":"a/b","dst":"c/d","port":1,"verdict":"deny"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `v.jsonl:1: dst: "nope" is neither namespace/pod nor an IP address`)
	assert.Contains(t, err.Error(), `v.jsonl:2: protocol: Required value`)
}

// FuzzReadVerdictLog: any input gives either an error or flows that were
// each counted at least once, allowed plus denied being the count.
func FuzzReadVerdictLog(f *testing.F) {
	f.Add(`{"src":"x/a","dst":"10.0.0.9","port":53,"protocol":"UDP","verdict":"deny"}`)
	f.Add(`{"src":"::1","dst":"x/b","port":65535,"protocol":"TCP","verdict":"allow"}` + "\n" + `{"protocol":"ICMP"}`)
	f.Add("{}\n[]\nnull")
	f.Fuzz(func(t *testing.T, in string) {
		got, st, err := reach.ReadVerdictLog("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		total := 0
		for _, l := range got {
			assert.Positive(t, l.Count)
			assert.Equal(t, l.Count, l.Allowed+l.Denied)
			assert.NotZero(t, l.Flow.Port)
			total += l.Count
		}
		assert.Equal(t, st.Records-st.Skipped, total)
	})
}
