package nftables

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// newNetNS creates an anonymous network namespace and closes it when the test
// ends (the kernel removes it with its last reference). It skips the test
// when not root or when namespaces cannot be created.
func newNetNS(tb testing.TB) netns.NsHandle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace and programs nftables in it")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		tb.Skipf("cannot read the current network namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		tb.Skipf("cannot create a network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// This thread stays in the new namespace: keep it locked so the
		// runtime discards it when the goroutine ends.
		runtime.LockOSThread()
		tb.Fatalf("cannot return to the original namespace: %v", err)
	}
	tb.Cleanup(func() { ns.Close() })
	return ns
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
	ks, err := b.c.read(b.cfg.TableName)
	require.NoError(tb, err)
	return ks
}

// requireKernelEquals checks that the kernel holds exactly what a fresh build
// of snap describes.
func requireKernelEquals(tb testing.TB, b *Backend, snap *ir.Snapshot) {
	tb.Helper()
	want, err := build(snap, b.cfg.Priority)
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
