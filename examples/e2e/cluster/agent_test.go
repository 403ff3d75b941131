package cluster

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

// The test binary doubles as a stand-in node agent (see TestStartAgent),
// so that the harness's plumbing is tested without the real agent.
func TestMain(m *testing.M) {
	if os.Getenv("PALISADE_E2E_FAKE_AGENT") == "1" {
		os.Exit(fakeAgent())
	}
	os.Exit(m.Run())
}

// fakeAgent accepts the node agent's flags, checks that --netns names the
// namespace it was meant to get, and reports ready after a short while.
func fakeAgent() int {
	fs := flag.NewFlagSet("node-agent", flag.ContinueOnError)
	var kubeconfig, node, backend, table, netnsPath, metrics, health string
	var minSync, resync time.Duration
	fs.StringVar(&kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&node, "node-name", "", "")
	fs.StringVar(&backend, "backend", "", "")
	fs.StringVar(&table, "table-name", "", "")
	fs.StringVar(&netnsPath, "netns", "", "")
	fs.StringVar(&metrics, "metrics-addr", "", "")
	fs.StringVar(&health, "health-addr", "", "")
	fs.DurationVar(&minSync, "min-sync-interval", 0, "")
	fs.DurationVar(&resync, "resync-period", 0, "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	got, err := os.Readlink(netnsPath)
	if err != nil || got != os.Getenv("WANT_NETNS") || backend != "nftables" || node == "" || kubeconfig == "" {
		fmt.Fprintf(os.Stderr, "fake agent: netns %q (%v), want %q; backend %q node %q kubeconfig %q\n",
			got, err, os.Getenv("WANT_NETNS"), backend, node, kubeconfig)
		return 1
	}
	start := time.Now()
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < 300*time.Millisecond {
			http.Error(w, "first sync pending", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	fmt.Fprintln(os.Stderr, "fake agent: serving", health)
	if err := http.ListenAndServe(health, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestStartAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (lab namespaces)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := lab.New(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: t.TempDir(), t: t, AgentKubeconfig: "/dev/null"}
	a, err := c.StartAgent(ctx, self, AgentOptions{
		NodeName: "node-0", NetNSFd: int(h), MinSyncInterval: time.Millisecond,
		Env: []string{"PALISADE_E2E_FAKE_AGENT=1", "WANT_NETNS=" + want},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Exited():
		t.Fatalf("agent exited: %v", a.ExitErr())
	default:
	}
	// The lab's handle is still ours and open.
	if got, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(h))); err != nil || got != want {
		t.Errorf("lab's netns fd after StartAgent: %q, %v", got, err)
	}
	c.Close()
	select {
	case <-a.Exited():
	default:
		t.Error("agent still running after Close")
	}
}
