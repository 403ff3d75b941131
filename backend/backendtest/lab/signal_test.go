package lab

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const signalChildEnv = "PALISADE_LAB_SIGNAL_CHILD"

// A process holding a lab and HandleSignals ends by SIGTERM as it would have
// without the handler, after closing the lab.
func TestHandleSignals(t *testing.T) {
	if os.Getenv(signalChildEnv) == "1" {
		signalChild()
		return
	}
	requireNetns(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHandleSignals$", "-test.count=1")
	cmd.Env = append(os.Environ(), signalChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "child ended before it was ready")
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child not ready after 10s")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "child exit: %v", err)
	ws := exit.Sys().(syscall.WaitStatus)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGTERM, "child ended by %v", ws)
}

func signalChild() {
	l, err := New(context.Background(), Config{})
	if err != nil {
		os.Exit(2)
	}
	HandleSignals(l)
	os.Stdout.WriteString("ready\n")
	time.Sleep(10 * time.Second) // bounded: the parent signals long before
	os.Exit(3)
}

func TestHandleSignalsStop(t *testing.T) {
	l := newLab(t, Config{})
	HandleSignals(l)() // os/signal starts its own goroutine once per process
	before := runtime.NumGoroutine()
	stop := HandleSignals(l)
	stop()
	stop()
	assert.True(t, settle(func() bool { return runtime.NumGoroutine() <= before }))
	_, err := l.NodeNS(0)
	assert.NoError(t, err, "stop does not close the lab")
}
