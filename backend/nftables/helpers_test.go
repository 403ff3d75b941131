package nftables

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// newNetNS is a fresh network namespace for the test (backendtest.NewNetNS).
func newNetNS(tb testing.TB) netns.NsHandle {
	return backendtest.NewNetNS(tb, "programs nftables")
}

// inNS runs fn on a thread switched to ns.
func inNS(tb testing.TB, ns netns.NsHandle, fn func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			tb.Errorf("get namespace: %v", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			tb.Errorf("enter namespace: %v", err)
			return
		}
		fn()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	<-done
}

// newTestBackend returns a Backend on a fresh namespace.
func newTestBackend(tb testing.TB) (*Backend, netns.NsHandle) {
	tb.Helper()
	ns := newNetNS(tb)
	b, err := New(Config{NetNS: int(ns), TableName: "palisade-test"})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = b.Close() })
	return b, ns
}

// reopen returns a second Backend on the same namespace and table (a
// restart).
func reopen(tb testing.TB, ns netns.NsHandle) *Backend {
	tb.Helper()
	b, err := New(Config{NetNS: int(ns), TableName: "palisade-test"})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// kernelModel reads the table back.
func kernelModel(tb testing.TB, b *Backend) *kernelState {
	tb.Helper()
	ks, err := b.c.read(unix.NFPROTO_INET, b.cfg.TableName)
	require.NoError(tb, err)
	return ks
}

// requireKernelEquals checks that the kernel holds exactly what a fresh build
// of snap describes.
func requireKernelEquals(tb testing.TB, b *Backend, snap *ir.Snapshot) {
	tb.Helper()
	want, err := buildLogging(snap, b.cfg.Priority, b.cfg.Log)
	require.NoError(tb, err)
	have := kernelModel(tb, b)
	require.Empty(tb, diffModels(have, want.m, nil), "kernel state differs from the snapshot")
}

func mustSync(tb testing.TB, b *Backend, snap *ir.Snapshot) (changes int, repairs []string) {
	tb.Helper()
	rep, err := b.Sync(context.Background(), snap)
	require.NoError(tb, err)
	require.Equal(tb, snap.Generation, rep.Generation)
	return rep.Changes, rep.Repairs
}

// testSnapshot is irtest.Exercise with the pod sets as hash sets.
func testSnapshot() *ir.Snapshot { return irtest.Exercise(true) }
