package cluster

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after grace) and
// leaves etcd running, so that a test can watch what clients do during an
// outage. RestartAPIServer brings it back.
func (c *Cluster) StopAPIServer(grace time.Duration) error {
	c.mu.Lock()
	p := c.api
	c.mu.Unlock()
	if p == nil {
		return errors.New("kube-apiserver not running")
	}
	p.Stop(grace)
	return nil
}

// SignalAPIServer sends sig to kube-apiserver, e.g. SIGSTOP to hang it (its
// port still accepts connections, nothing answers) and SIGCONT to resume it.
func (c *Cluster) SignalAPIServer(sig syscall.Signal) error {
	c.mu.Lock()
	p := c.api
	c.mu.Unlock()
	if p == nil {
		return errors.New("kube-apiserver not running")
	}
	return p.Signal(sig)
}

// RestartAPIServer starts kube-apiserver again with the arguments it first
// ran with: the same port, certificates, tokens and etcd, so kubeconfigs and
// clients made before stay valid. It returns once /readyz answers 200.
// The previous process must have been stopped (StopAPIServer).
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	old, path, args := c.api, c.apiPath, append([]string(nil), c.apiArgs...)
	c.mu.Unlock()
	if path == "" {
		return errors.New("kube-apiserver was never started")
	}
	if old != nil {
		select {
		case <-old.Exited():
		default:
			return errors.New("kube-apiserver still running: StopAPIServer first")
		}
	}
	hc := c.httpClient()
	var lastErr error
	// The port was just released; a socket of the old process may linger
	// briefly, so retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		p, err := startProcess("kube-apiserver", c.path("kube-apiserver.log"), path, args, nil)
		if err != nil {
			return err
		}
		err = waitHTTP(ctx, p, func() error { return c.readyz(ctx, hc, c.Server) })
		if err == nil {
			c.mu.Lock()
			c.api = p
			c.mu.Unlock()
			return nil
		}
		p.Stop(10 * time.Second)
		lastErr = fmt.Errorf("kube-apiserver did not become ready after restart: %v\n--- kube-apiserver.log (tail) ---\n%s", err, p.Tail(40))
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return lastErr
}
