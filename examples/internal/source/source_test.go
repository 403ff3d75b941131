package source_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"

	"github.com/palisade-net/palisade/examples/internal/source"
)

func TestFlagErrors(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	for _, tc := range []struct {
		name string
		f    source.Flags
		want string
	}{
		{"nothing", source.Flags{}, "no input: give -f PATH or --kubeconfig PATH"},
		{"both", source.Flags{Files: []string{"x"}, Kubeconfig: "k"}, "give either -f or --kubeconfig, not both"},
		{"context alone", source.Flags{Files: []string{"x"}, Context: "c"}, "--context needs --kubeconfig"},
		{"missing kubeconfig", source.Flags{Kubeconfig: "/nonexistent/kubeconfig"}, "--kubeconfig /nonexistent/kubeconfig"},
		{"missing file", source.Flags{Files: []string{"/nonexistent.yaml"}}, "/nonexistent.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.Load(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLiveChoice(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	assert.False(t, (&source.Flags{}).Live())
	assert.True(t, (&source.Flags{Kubeconfig: "k"}).Live())
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	assert.True(t, (&source.Flags{}).Live(), "in a pod, no -f means the in-cluster configuration")
	assert.False(t, (&source.Flags{Files: []string{"x"}}).Live())
}

// TestUnreachable points a kubeconfig at a loopback port nothing listens
// on: the error names the API server and what was being listed.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://`+addr+`", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: other
  context: {cluster: c, user: u}
- name: main
  context: {cluster: c, user: u}
current-context: main
`), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := source.Flags{Kubeconfig: kc, Context: "other"}
	_, err = f.Load(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the API server at https://"+addr)
	_, err = (&source.Flags{Kubeconfig: kc, Context: "nope"}).Load(ctx)
	assert.ErrorContains(t, err, `context "nope"`)
}

// TestHungAPIServer lists from a loopback server that accepts connections
// and never answers: an error naming the server, once the request timeout
// has passed, not a hang.
func TestHungAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	defer func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	}()
	cfg := &rest.Config{Host: "https://" + l.Addr().String(), Timeout: 300 * time.Millisecond,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	start := time.Now()
	_, err = source.List(context.Background(), cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "https://"+l.Addr().String())
	assert.Contains(t, err.Error(), "list namespaces")
	assert.Less(t, time.Since(start), 20*time.Second, "bounded by the request timeout, with client-go's retries")
	t.Logf("error after %v: %v", time.Since(start).Round(time.Millisecond), err)
}
