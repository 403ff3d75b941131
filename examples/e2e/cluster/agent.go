package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BuildNodeAgent builds examples/node-agent into a temporary directory of t
// and returns the binary's path. It skips t when the agent's source is not
// in the tree.
func BuildNodeAgent(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Skipf("node agent: %v", err)
	}
	src := filepath.Join(root, "examples", "node-agent")
	if m, _ := filepath.Glob(filepath.Join(src, "*.go")); len(m) == 0 {
		t.Skipf("node agent: no Go source in %s yet", src)
	}
	bin := filepath.Join(t.TempDir(), "node-agent")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/node-agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/node-agent: %v\n%s", err, out)
	}
	return bin
}

// AgentOptions describe one node agent.
type AgentOptions struct {
	// NodeName is the agent's --node-name: it enforces pods with that
	// spec.nodeName.
	NodeName string
	// NetNSFd is a descriptor of the network namespace to program (a lab
	// node's, lab.NodeNS(i)); the agent gets a duplicate as its fd 3 and
	// --netns /proc/self/fd/3. Negative: the agent's own namespace.
	NetNSFd int
	// TableName is --table-name; empty means "palisade".
	TableName string
	// MinSyncInterval and ResyncPeriod are passed when non-zero.
	MinSyncInterval, ResyncPeriod time.Duration
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
	// Env is added to the agent's environment (the test's own).
	Env []string
	// ReadyTimeout bounds the wait for /readyz; 0 means 60s.
	ReadyTimeout time.Duration
}

// Agent is a running node agent.
type Agent struct {
	*Process
	HealthAddr, MetricsAddr string
}

// StartAgent runs the node agent binary bin with the agent's kubeconfig
// (its ServiceAccount's RBAC, nothing more), waits until its /readyz says it
// has programmed its first sync, and has Close stop it.
func (c *Cluster) StartAgent(ctx context.Context, bin string, o AgentOptions) (*Agent, error) {
	if o.TableName == "" {
		o.TableName = "palisade"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	health, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--kubeconfig", c.AgentKubeconfig,
		"--node-name", o.NodeName,
		"--backend", "nftables",
		"--table-name", o.TableName,
		"--metrics-addr", metrics,
		"--health-addr", health,
	}
	var extra []*os.File
	if o.NetNSFd >= 0 {
		// A duplicate: the child's fd 3; ours is closed once it started,
		// the caller's (the lab's) handle stays untouched.
		fd, err := unix.FcntlInt(uintptr(o.NetNSFd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("dup netns fd: %w", err)
		}
		f := os.NewFile(uintptr(fd), "netns")
		defer f.Close()
		extra = append(extra, f)
		args = append(args, "--netns", "/proc/self/fd/3")
	}
	if o.MinSyncInterval > 0 {
		args = append(args, "--min-sync-interval", o.MinSyncInterval.String())
	}
	if o.ResyncPeriod > 0 {
		args = append(args, "--resync-period", o.ResyncPeriod.String())
	}
	args = append(args, o.ExtraArgs...)
	name := "node-agent " + o.NodeName
	logName := "node-agent-" + strings.NewReplacer("/", "_", " ", "_").Replace(o.NodeName) + ".log"
	var env []string
	if len(o.Env) > 0 {
		env = append(os.Environ(), o.Env...)
	}
	p, err := startProcess(name, c.path(logName), bin, args, env, extra...)
	if err != nil {
		return nil, err
	}
	c.Track(p)
	a := &Agent{Process: p, HealthAddr: health, MetricsAddr: metrics}
	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitHTTP(ctx, p, func() error {
		resp, err := hc.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("%s not ready: %v\n--- %s (tail) ---\n%s", name, err, p.LogPath, p.Tail(30))
	}
	return a, nil
}

// moduleRoot is the main module's directory (two levels above
// examples/e2e/apiserver).
func moduleRoot() (string, error) {
	d, err := apiserverModuleDir()
	if err != nil {
		return "", err
	}
	root := filepath.Clean(filepath.Join(d, "..", "..", ".."))
	if !exists(filepath.Join(root, "go.mod")) {
		return "", fmt.Errorf("no go.mod in %s", root)
	}
	return root, nil
}
