// Package nsthread runs a function on an OS thread inside another network
// namespace. It guarantees that no goroutine other than the function's is
// ever scheduled on a thread left in that namespace: the thread is switched
// back before it is unlocked, and a thread that cannot be switched back is
// never unlocked, so the Go runtime discards it.
package nsthread

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a locked OS thread switched into the network namespace of
// the file descriptor fd, and returns fn's error. With fd 0 it runs fn on
// the calling goroutine, in the namespace it is in. Sockets and files fn
// opens keep the namespace they were opened in.
func Do(fd int, fn func() error) error {
	if fd == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(fd)); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
