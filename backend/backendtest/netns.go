package backendtest

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// NewNetNS creates an anonymous network namespace for a test that programs
// a packet filter in it, and closes it when the test ends (the kernel
// removes it with its last reference). It skips the test, saying it needs
// root to do what, when not root or when namespaces cannot be created. The
// calling thread never changes namespace: the work is done on a locked
// thread that is discarded if it cannot switch back.
func NewNetNS(tb testing.TB, what string) netns.NsHandle {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates a network namespace and " + what + " in it")
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if serr := netns.Set(orig); serr != nil {
			c <- result{err: serr} // the thread stays locked and dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		c <- result{ns, err}
	}()
	r := <-c
	if r.err != nil {
		tb.Skipf("cannot create a network namespace: %v", r.err)
	}
	tb.Cleanup(func() { r.ns.Close() })
	return r.ns
}
