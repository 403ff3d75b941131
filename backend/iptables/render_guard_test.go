package iptables

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Render prints the raw table's guard chains and hook beside the filter
// table's, without a kernel.
func TestRenderGuard(t *testing.T) {
	out, err := Render(guardedSnapshot(1))
	require.NoError(t, err)
	for _, want := range []string{"*raw", "-I PREROUTING 1 -m comment --comment \"palisade: source validation of local endpoints\" -j PALISADE-GUARD",
		"-A PALISADE-GUARDBR -s fe80::/10", "create pal-g4 hash:net,iface family inet", "add pal-gi4 0.0.0.0/1,veth0"} {
		assert.Contains(t, out, want)
	}
	assert.Equal(t, 2, strings.Count(out, "*raw"), "one raw section per family")
}
