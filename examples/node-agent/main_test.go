package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		wantErr []string // substrings; none: success
		check   func(*testing.T, *options)
	}{
		{
			name: "defaults with NODE_NAME",
			env:  env("NODE_NAME", "node-a"),
			check: func(t *testing.T, o *options) {
				assert.Equal(t, "node-a", o.nodeName)
				assert.Equal(t, "nftables", o.backend)
				assert.Equal(t, "palisade", o.tableName)
				assert.Equal(t, failClosed, o.failMode)
				assert.False(t, o.cleanupOnExit)
				assert.Equal(t, informer.DefaultResyncPeriod, o.resyncPeriod)
				assert.Equal(t, informer.DefaultDriftCheckInterval, o.driftCheck)
				assert.Equal(t, informer.DefaultMinSyncInterval, o.minSyncInterval)
				assert.Empty(t, o.kubeconfig)
				assert.Empty(t, o.netns)
				assert.Equal(t, apiProbePeriod, o.apiProbePeriod)
				assert.True(t, o.apiGate)
				assert.Equal(t, sourceOff, o.sourceValidation)
				assert.Equal(t, defaultCNICacheDir, o.cniCacheDir)
				assert.Equal(t, bridgeCheck, o.bridgeNetfilter)
				assert.Equal(t, bridgeCheckPeriod, o.bridgeCheck)
			},
		},
		{
			name: "source validation",
			args: []string{"--node-name", "n", "--source-validation", "cni", "--cni-cache-dir", "/run/cni"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, sourceCNI, o.sourceValidation)
				assert.Equal(t, "/run/cni", o.cniCacheDir)
			},
		},
		{
			name:    "bad source validation",
			args:    []string{"--node-name", "n", "--source-validation", "arp"},
			wantErr: []string{`--source-validation "arp": must be off, cni or route`},
		},
		{
			name: "flags override the environment",
			args: []string{"--node-name", "node-b", "--table-name", "lab1", "--netns", "/proc/1/ns/net",
				"--fail-mode", "open", "--cleanup-on-exit", "--metrics-addr", "0", "--health-addr", "",
				"--resync-period", "1m", "--min-sync-interval", "5ms", "--kubeconfig", "/tmp/kc", "-v", "4", "--api-probe-period", "500ms", "--api-gate=false"},
			env: env("NODE_NAME", "node-a"),
			check: func(t *testing.T, o *options) {
				assert.Equal(t, "node-b", o.nodeName)
				assert.Equal(t, "lab1", o.tableName)
				assert.Equal(t, "/proc/1/ns/net", o.netns)
				assert.Equal(t, failOpen, o.failMode)
				assert.True(t, o.cleanupOnExit)
				assert.True(t, disabled(o.metricsAddr))
				assert.True(t, disabled(o.healthAddr))
				assert.Equal(t, time.Minute, o.resyncPeriod)
				assert.Equal(t, 5*time.Millisecond, o.minSyncInterval)
				assert.Equal(t, "/tmp/kc", o.kubeconfig)
				assert.Equal(t, 500*time.Millisecond, o.apiProbePeriod)
				assert.False(t, o.apiGate)
			},
		},
		{name: "node name required", env: env(), wantErr: []string{"--node-name is required"}},
		{name: "iptables", args: []string{"--node-name", "n", "--backend", "iptables"},
			check: func(t *testing.T, o *options) { assert.Equal(t, "iptables", o.backend) }},
		{name: "unknown backend", args: []string{"--node-name", "n", "--backend", "ebpf"},
			wantErr: []string{`--backend "ebpf"`}},
		{name: "bridge netfilter enable", args: []string{"--node-name", "n", "--bridge-netfilter", "enable", "--bridge-check-period", "1s"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, bridgeEnable, o.bridgeNetfilter)
				assert.Equal(t, time.Second, o.bridgeCheck)
			}},
		{name: "bad bridge netfilter", args: []string{"--node-name", "n", "--bridge-netfilter", "off", "--bridge-check-period", "0"},
			wantErr: []string{`--bridge-netfilter "off"`, "--bridge-check-period 0s"}},
		{name: "bad fail mode", args: []string{"--node-name", "n", "--fail-mode", "maybe"},
			wantErr: []string{`--fail-mode "maybe"`}},
		{name: "every problem reported", args: []string{"--min-sync-interval", "0", "--resync-period", "-1s", "--table-name", "", "--api-probe-period", "0"},
			wantErr: []string{"--node-name", "--min-sync-interval", "--resync-period", "--table-name", "--api-probe-period"}},
		{name: "stray argument", args: []string{"--node-name", "n", "extra"}, wantErr: []string{"unexpected arguments: extra"}},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := tt.env
			if getenv == nil {
				getenv = env()
			}
			o, err := parseFlags(tt.args, getenv, io.Discard)
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, s := range tt.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestMetricsAdapter(t *testing.T) {
	im, reg, err := newMetrics()
	require.NoError(t, err)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	im.ObserveSync(3*time.Millisecond, backend.SyncReport{Generation: 7, Changes: 12})
	im.ObserveApply(200 * time.Microsecond)
	im.ObserveLatency(5 * time.Millisecond)
	im.SetGeneration(7)
	im.SetCounts(3, 4, 25)
	im.IncError(informer.ErrorApply)
	im.IncError(informer.ErrorApply)
	im.AddRepairs(2)

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, line := range []string{
		"palisade_sync_duration_seconds_count 1",
		"palisade_apply_duration_seconds_count 1",
		"palisade_event_to_programmed_seconds_count 1",
		"palisade_sync_changes_total 12",
		"palisade_programmed_generation 7",
		"palisade_endpoints 3",
		"palisade_rule_lists 4",
		"palisade_set_members 25",
		`palisade_errors_total{kind="apply"} 2`,
		`palisade_errors_total{kind="sync"} 0`,
		"palisade_drift_repairs_total 2",
		"# TYPE go_goroutines gauge",
	} {
		assert.Contains(t, body, line+"\n")
	}
}

func TestReadyHandler(t *testing.T) {
	ready := errNotSynced
	h := readyHandler(func() error { return ready })
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "not ready: waiting for the first full sync\n", rec.Body.String())
	ready = nil
	rec = httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
}

func TestServersShareOrSplitAddresses(t *testing.T) {
	ctx := context.Background()
	o := &options{metricsAddr: "127.0.0.1:0", healthAddr: "0"}
	servers, err := startServers(ctx, o, http.NotFoundHandler(), func() error { return nil })
	require.NoError(t, err)
	assert.Len(t, servers, 1)
	for _, s := range servers {
		require.NoError(t, s.Close())
	}
	o = &options{metricsAddr: "", healthAddr: ""}
	servers, err = startServers(ctx, o, http.NotFoundHandler(), func() error { return nil })
	require.NoError(t, err)
	assert.Empty(t, servers)
	o = &options{metricsAddr: "256.0.0.1:1", healthAddr: "0"}
	_, err = startServers(ctx, o, http.NotFoundHandler(), func() error { return nil })
	require.Error(t, err)
}

// TestBinaryFailsFastWithoutAPIServer builds the agent and starts it
// against an API server that is not there.
func TestBinaryFailsFastWithoutAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "node-agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
- name: nobody
  user: {token: x}
`), 0o600))

	runAgent := func(env []string, args ...string) (int, string, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "agent must fail, got %v; stderr: %s", err, stderr.String())
		return exit.ExitCode(), stderr.String(), time.Since(start)
	}

	code, stderr, took := runAgent(nil, "--kubeconfig", kubeconfig, "--node-name", "n1",
		"--api-timeout", "1s", "--metrics-addr", "0", "--health-addr", "0")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "cannot reach the API server at https://127.0.0.1:1")
	assert.Less(t, took, 15*time.Second)

	code, stderr, _ = runAgent(nil, "--node-name", "n1", "--metrics-addr", "0", "--health-addr", "0")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "in-cluster configuration")

	code, stderr, _ = runAgent(nil, "--kubeconfig", kubeconfig)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--node-name is required")
	assert.False(t, strings.Contains(stderr, "panic"))
}
