package nsthread_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/internal/nsthread"
)

func current(t *testing.T) string {
	t.Helper()
	id, err := os.Readlink("/proc/thread-self/ns/net")
	require.NoError(t, err)
	return id
}

// fn runs in the namespace it is given, and nothing else does: the caller
// and later goroutines stay where they were.
func TestDoEntersAndLeaves(t *testing.T) {
	ns := backendtest.NewNetNS(t, "runs a function")
	want, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(ns)))
	require.NoError(t, err)
	host := current(t)
	require.NotEqual(t, host, want)

	var inside string
	require.NoError(t, nsthread.Do(int(ns), func() error { inside = current(t); return nil }))
	assert.Equal(t, want, inside)
	assert.Equal(t, host, current(t))
	for range 20 { // the runtime reuses threads: none is left inside
		done := make(chan string)
		go func() { done <- current(t) }()
		assert.Equal(t, host, <-done)
	}

	var here string
	require.NoError(t, nsthread.Do(0, func() error { here = current(t); return nil }), "0: the caller's namespace")
	assert.Equal(t, host, here)

	errFn := os.ErrClosed
	assert.ErrorIs(t, nsthread.Do(int(ns), func() error { return errFn }), errFn)

	called := false
	err = nsthread.Do(1<<20, func() error { called = true; return nil })
	assert.Error(t, err, "not a namespace descriptor")
	assert.False(t, called)
}
