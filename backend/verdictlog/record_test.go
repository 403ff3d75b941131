package verdictlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The file format is fixed: these fields, in this order, never left out.
func TestRecordSchema(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, &Record{
		Time: time.Date(2026, 12, 3, 18, 0, 0, 123456789, time.UTC), Node: "node-a", Src: "shop/web-1", Dst: "shop/db-0",
		Port: 6379, Protocol: "TCP", Verdict: VerdictDeny, Tier: "NetworkPolicy", Rule: RuleIsolated,
	}))
	assert.Equal(t, `{"time":"2026-12-03T18:00:00.123456789Z","node":"node-a","src":"shop/web-1","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"deny","tier":"NetworkPolicy","policy":"","rule":"isolated"}`+"\n", b.String())
	var back Record
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &fields))
	assert.Len(t, fields, 10)
}
