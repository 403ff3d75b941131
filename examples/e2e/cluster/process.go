package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Every child is started from one goroutine locked to its OS thread for the
// life of the process. Pdeathsig fires when the thread that forked a child
// exits, and the Go runtime does end threads (a goroutine that locked its
// thread, e.g. to enter a network namespace as the lab does, and returns
// without unlocking takes its thread with it): forking from a thread that
// never ends makes Pdeathsig mean "the test binary died".
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startChild(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so that Stop reaches whatever it forks too; and
	// SIGKILL when the test binary dies without running its cleanups.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// Process is a child process of the harness, in its own process group,
// with its output in a log file.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	waitErr error
	stop    sync.Once
}

// startProcess starts path with args, its stdout and stderr appended to
// logPath. extra becomes the child's descriptors 3, 4, ...
func startProcess(name, logPath, path string, args []string, env []string, extra ...*os.File) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = extra
	if env != nil {
		cmd.Env = env
	}
	if err := startChild(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, log: logf, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the child's process id (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit status once Exited is closed.
func (p *Process) ExitErr() error {
	select {
	case <-p.exited:
		if p.waitErr == nil {
			return errors.New("exited with status 0")
		}
		return p.waitErr
	default:
		return nil
	}
}

// Signal sends sig to the process alone (not its group); it does nothing
// once the process has exited.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return nil
	default:
		return syscall.Kill(p.cmd.Process.Pid, sig)
	}
}

// ExitCode is the process's exit code once Exited is closed: -1 while it
// runs and when a signal ended it.
func (p *Process) ExitCode() int {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process to exit. It is idempotent.
func (p *Process) Stop(grace time.Duration) {
	p.stop.Do(func() {
		pgid := p.cmd.Process.Pid
		select {
		case <-p.exited:
		default:
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(grace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-p.exited
			}
		}
		// Anything left in the group (the leader is gone) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		p.log.Close()
	})
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return tailFile(p.LogPath, n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	end := len(b)
	for end > 0 && b[end-1] == '\n' {
		end--
	}
	start := end
	for lines := 0; start > 0; start-- {
		if b[start-1] == '\n' {
			lines++
			if lines == n {
				break
			}
		}
	}
	return string(b[start:end])
}
