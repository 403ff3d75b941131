package iptables

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
)

// TestContract runs backendtest.RunContract on the backend over a fake
// runner: Sync and Apply accept exactly what ir.CheckDelta accepts.
func TestContract(t *testing.T) {
	backendtest.RunContract(t, func(tb testing.TB) backend.Backend {
		b, err := New(Config{Runner: &fakeRunner{}})
		require.NoError(tb, err)
		tb.Cleanup(func() { b.Close() })
		return b
	})
}
