package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Runner runs one command to completion with stdin as its standard input
// and returns its standard output. A command that runs and exits non-zero
// must be reported as a *CommandError (the backend looks at exit codes
// only, never at the text of stderr). Tests inject a fake; the default
// runs the binaries inside the configured network namespace.
type Runner interface {
	Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error)
}

// CommandError is a command that exited non-zero.
type CommandError struct {
	Name     string
	Args     []string
	ExitCode int
	// Stderr is kept for the error message only.
	Stderr string
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	return fmt.Sprintf("%s %s: exit status %d: %s", e.Name, strings.Join(e.Args, " "), e.ExitCode, msg)
}

// ExitCode returns the exit status of a failed command in err's chain, or
// -1 when err is not a *CommandError.
func ExitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// nsRunner starts every command from an OS thread locked into the target
// network namespace (the child inherits the namespace of the thread that
// forks it); the thread is switched back before it is unlocked, and is
// thrown away (left locked in a goroutine that exits) when switching back
// fails. current runs in the namespace of the process instead.
type nsRunner struct {
	ns      netns.NsHandle
	current bool
}

func (r *nsRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := r.start(cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.Bytes(), &CommandError{Name: name, Args: args, ExitCode: ee.ExitCode(), Stderr: stderr.String()}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

func (r *nsRunner) start(cmd *exec.Cmd) error {
	if r.current {
		return cmd.Start()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(r.ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		startErr := cmd.Start()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine and
			// never runs anything else in the wrong namespace.
			if startErr == nil {
				startErr = fmt.Errorf("leaving network namespace: %w", err)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			done <- startErr
			return
		}
		runtime.UnlockOSThread()
		done <- startErr
	}()
	return <-done
}
