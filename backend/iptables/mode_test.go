package iptables

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetectMode(t *testing.T) {
	rules := func(n int) string {
		out := "*filter\n:FORWARD ACCEPT [0:0]\n"
		for i := 0; i < n; i++ {
			out += "-A FORWARD -j ACCEPT\n"
		}
		return out + "COMMIT\n"
	}
	tests := []struct {
		name   string
		output map[string]string
		fail   map[string]int
		want   Mode
	}{
		{"legacy holds the rules", map[string]string{"iptables-legacy-save": rules(3), "ip6tables-legacy-save": rules(1), "iptables-nft-save": rules(2)}, nil, ModeLegacy},
		{"nft holds the rules", map[string]string{"iptables-legacy-save": rules(1), "ip6tables-nft-save": rules(2)}, nil, ModeNFT},
		{"a tie goes to iptables --version", nil, nil, ModeNFT},
		{"only legacy is installed", map[string]string{"iptables-legacy-save": rules(0)}, map[string]int{"iptables-nft-save": 127}, ModeLegacy},
		{"only nft is installed", map[string]string{"iptables-legacy-save": rules(5)}, map[string]int{"iptables-legacy-save": 127}, ModeNFT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detectMode(context.Background(), &fakeRunner{output: tt.output, fail: tt.fail})
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
