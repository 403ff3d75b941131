package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLiveSourceErrors checks the live source's errors that need no API
// server (examples/e2e runs the commands against a real one).
func TestLiveSourceErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://`+addr+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	flowsFile := filepath.Join(demo, "flows.txt")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"explain: both sources", []string{"explain", "-f", demo, "--kubeconfig", kc, "shop/web-1", "shop/db-0", "6379", "TCP"}, 1, "give either -f or --kubeconfig, not both"},
		{"explain: --context alone", []string{"explain", "-f", demo, "--context", "c", "shop/web-1", "shop/db-0", "6379", "TCP"}, 1, "--context needs --kubeconfig"},
		{"explain: unreachable", []string{"explain", "--kubeconfig", kc, "shop/web-1", "shop/db-0", "6379", "TCP"}, 1, "cannot reach the API server at https://" + addr},
		{"simulate: unreachable", []string{"simulate", "--kubeconfig", kc, "--flows", flowsFile}, 1, "cannot reach the API server at https://" + addr},
		{"simulate: steps and live", []string{"simulate", "--kubeconfig", kc, "--steps", demo + "/steps", "--flows", flowsFile}, 1, "give either --steps or a live cluster"},
		{"diff: unreachable", []string{"diff", "--kubeconfig", kc, "--delete", "networkpolicy/shop/x"}, 2, "cannot reach the API server at https://" + addr},
		{"diff: missing kubeconfig", []string{"diff", "--kubeconfig", kc + ".nope", "--delete", "networkpolicy/shop/x"}, 2, "--kubeconfig " + kc + ".nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			r := netpolctl(t, tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Empty(t, r.stdout)
			assert.True(t, strings.HasPrefix(r.stderr, "netpolctl: "), r.stderr)
			assert.Contains(t, r.stderr, tc.want)
		})
	}
}
