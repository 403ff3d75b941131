package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/verdictlog"
)

func TestLogFlags(t *testing.T) {
	getenv := func(string) string { return "node-1" }
	for _, tc := range []struct {
		args    []string
		want    verdictlog.Logging
		wantErr string
	}{
		{nil, verdictlog.Logging{}, ""},
		{[]string{"--log-verdicts=deny"}, verdictlog.Logging{Enabled: true, Group: defaultLogGroup, Rate: verdictlog.DefaultRate}, ""},
		{[]string{"--log-verdicts=all", "--log-rate=5000", "--log-group=7"}, verdictlog.Logging{Enabled: true, Group: 7, Rate: 5000, Allowed: true}, ""},
		{[]string{"--log-verdicts=some"}, verdictlog.Logging{}, `--log-verdicts "some": must be off, deny or all`},
		{[]string{"--log-verdicts=deny", "--log-rate=0"}, verdictlog.Logging{}, "--log-rate 0: must be 1 to"},
		{[]string{"--log-verdicts=deny", "--log-group=70000"}, verdictlog.Logging{}, "--log-group 70000: must be 0 to 65535"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, err := parseFlags(tc.args, getenv, io.Discard)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, o.log.logging())
		})
	}
}
