package lab

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// HandleSignals closes l when the process receives SIGINT or SIGTERM, then
// lets that signal take its default effect: the process ends as it would
// have without the handler (signal.Reset is called for it, which also ends
// any other signal.Notify for it). The returned function stops the handling
// without closing l; call it once l is closed normally.
//
// A CLI that prefers to unwind by itself can instead run its probes under
// signal.NotifyContext and defer l.Close(): Probe returns promptly once its
// context is done. Either way nothing outlives the process: the lab's
// namespaces are anonymous and held only by its descriptors, so the kernel
// removes them even after SIGKILL.
func HandleSignals(l *Lab) (stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-c:
			l.Close()
			signal.Reset(sig)
			if s, ok := sig.(syscall.Signal); ok {
				syscall.Kill(os.Getpid(), s)
			}
		case <-done:
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(c)
			close(done)
			wg.Wait()
		})
	}
}
