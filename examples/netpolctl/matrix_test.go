package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// netpolctl matrix as a user runs it; the model and the page are tested in
// examples/internal/matrix (the page in a headless browser).

func TestMatrixText(t *testing.T) {
	r := netpolctl(t, "matrix", "-f", demo, "-A")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	assert.NotContains(t, r.stdout, "\x1b[", "not a terminal: no colour")
	for _, want := range []string{
		"  4 db-0          · │ ✗ │ ✗ ╲ ✗ ✗\n",
		"  5 web-1         · │ ✗ │ ◐ ◐ ╲ ✗\n",
		"✓ every port allowed   ◐ some ports allowed   ✗ no port allowed   · no port to test   ╲ a pod to itself\n",
		"Ports: each destination's container ports.",
		"  shop/web-1 -> shop/db-0: allowed 6379/TCP (redis); denied 9121/TCP (metrics)\n",
	} {
		assert.Contains(t, r.stdout, want)
	}

	r = netpolctl(t, "matrix", "-f", demo, "--color", "always", "-n", "shop")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "\x1b[32m✓\x1b[0m")
	assert.NotContains(t, r.stdout, "monitoring")
}

type matrixJSON struct {
	Ports string `json:"ports"`
	Pods  []struct {
		Namespace, Name string
	} `json:"pods"`
	Cells []struct {
		Src, Dst, Verdict string
		Flows             []struct {
			Port     int    `json:"port"`
			Protocol string `json:"protocol"`
			Verdict  string `json:"verdict"`
			Ingress  struct {
				Tier, Kind, Namespace, Name, Rule string
			} `json:"ingress"`
		} `json:"flows"`
	} `json:"cells"`
}

// db-0 admits 6379 only from role: frontend; asked by name (redis) too,
// the port is tried once.
func TestMatrixJSONPortsAndSelection(t *testing.T) {
	r := netpolctl(t, "matrix", "-f", demo, "-n", "shop,monitoring", "-l", "app!=nothing", "--port", "6379,redis", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var m matrixJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m))
	assert.Equal(t, "6379/TCP, redis", m.Ports)
	require.Len(t, m.Pods, 5)
	toDB := map[string]string{}
	for _, c := range m.Cells {
		if c.Dst != "shop/db-0" || c.Src == c.Dst {
			continue
		}
		toDB[c.Src] = c.Verdict
		require.Len(t, c.Flows, 1, "%s -> db-0", c.Src)
		if c.Verdict == "allow" {
			assert.Equal(t, "db-from-frontend", c.Flows[0].Ingress.Name)
			assert.Equal(t, "0", c.Flows[0].Ingress.Rule)
		}
	}
	assert.Equal(t, map[string]string{"monitoring/prometheus-0": "deny", "shop/api-1": "deny", "shop/web-1": "allow", "shop/web-2": "allow"}, toDB)

	r = netpolctl(t, "matrix", "-f", demo, "-l", "role=db", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m))
	require.Len(t, m.Pods, 1)
	assert.Equal(t, "db-0", m.Pods[0].Name)
}

func TestMatrixHTML(t *testing.T) {
	r := netpolctl(t, "matrix", "-f", demo, "-o", "html")
	require.Equal(t, 0, r.code, r.stderr)
	assert.True(t, strings.HasPrefix(r.stdout, "<!DOCTYPE html>"))
	assert.Contains(t, r.stdout, "from files ../demo · all namespaces · ports: each destination&#39;s container ports")
	assert.Contains(t, r.stdout, `title="shop/web-1 → shop/db-0: partly allowed`)
}

func TestMatrixBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"matrix"}, "no input: give -f PATH or --kubeconfig PATH"},
		{[]string{"matrix", "-f", demo, "--port", "0"}, `--port "0": want a port 1-65535`},
		{[]string{"matrix", "-f", demo, "--port", "70000/TCP"}, `--port "70000/TCP": want a port 1-65535`},
		{[]string{"matrix", "-f", demo, "--port", "Metrics", "--port", "http/ICMP"}, `--port "Metrics": neither a port number nor a port name`},
		{[]string{"matrix", "-f", demo, "--port", "http/ICMP"}, `--port "http/ICMP": protocol "ICMP" is not TCP, UDP or SCTP`},
		{[]string{"matrix", "-f", demo, "-l", "role in (db"}, `--selector "role in (db"`},
		{[]string{"matrix", "-f", demo, "-o", "yaml"}, `--output "yaml": want text, html or json`},
		{[]string{"matrix", "-f", demo, "--color", "maybe"}, `--color "maybe": want auto, always or never`},
		{[]string{"matrix", "-f", demo, "-A", "-n", "shop"}, "give either -n or -A (--all-namespaces), not both"},
		{[]string{"matrix", "-f", "no/such/dir"}, "no/such/dir"},
	} {
		r := netpolctl(t, tc.args...)
		assert.Equal(t, 1, r.code, "%v", tc.args)
		assert.Contains(t, r.stderr, tc.want, "%v", tc.args)
		assert.Empty(t, r.stdout, "%v", tc.args)
	}
}

func TestMatrixEmptyNamespace(t *testing.T) {
	r := netpolctl(t, "matrix", "-f", demo, "-n", "nope")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "no pods selected\n", r.stdout)
	assert.Equal(t, "warning: -n nope: no pod selected in this namespace\n", r.stderr)
}

// On a terminal (a pseudo-terminal from script(1)), the text is coloured
// without --color, and a terminal narrower than the matrix gets a note.
func TestMatrixOnATerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to run netpolctl on a pseudo-terminal (Debian: bsdutils)")
	}
	run := func(cols int, env ...string) string {
		cmd := exec.Command(script, "-qec", fmt.Sprintf("stty cols %d; %s matrix -f %s", cols, binary, demo), "/dev/null")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	wide := run(200)
	assert.Contains(t, wide, "\x1b[32m✓\x1b[0m", "coloured on a terminal")
	assert.NotContains(t, wide, "note:")
	narrow := run(20)
	assert.Contains(t, narrow, "note: the matrix is 33 columns wide, the terminal 20: -o html > matrix.html shows it whole")
	assert.NotContains(t, run(200, "NO_COLOR=1"), "\x1b[", "NO_COLOR is honoured")
}
