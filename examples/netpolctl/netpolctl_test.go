package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests build netpolctl once and run it as a user would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "netpolctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "netpolctl")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building netpolctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const demo = "../demo"

type result struct {
	stdout, stderr string
	code           int
}

func netpolctl(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running netpolctl: %v", err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// line is one jsonl output line: the fields of the contract.
type line struct {
	Step     int    `json:"step"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason"`
	Egress   string `json:"egress"`
	Ingress  string `json:"ingress"`
	Conn     string `json:"conn"`
}

// short renders a line as "step SRC DST PORT PROTOCOL verdict".
func (l line) short() string {
	return fmt.Sprintf("%d %s %s %d %s %s", l.Step, l.Src, l.Dst, l.Port, l.Protocol, l.Verdict)
}

// parseJSONL checks that every line of out is one JSON object with the
// contract's fields, of the right types, and returns them.
func parseJSONL(t *testing.T, out string) []line {
	t.Helper()
	var lines []line
	sc := bufio.NewScanner(strings.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		var raw map[string]any
		require.NoErrorf(t, json.Unmarshal(sc.Bytes(), &raw), "line %d is not JSON: %s", n, sc.Text())
		for field, kind := range map[string]string{"step": "number", "src": "string", "dst": "string", "port": "number", "protocol": "string", "verdict": "string"} {
			v, ok := raw[field]
			require.Truef(t, ok, "line %d has no %q: %s", n, field, sc.Text())
			switch kind {
			case "number":
				_, ok = v.(float64)
			case "string":
				_, ok = v.(string)
			}
			require.Truef(t, ok, "line %d: %q is not a %s: %s", n, field, kind, sc.Text())
		}
		var l line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		require.Containsf(t, []string{"allow", "deny"}, l.Verdict, "line %d", n)
		lines = append(lines, l)
	}
	return lines
}

// demoVerdicts are the verdicts of examples/demo/flows.txt against
// examples/demo, in input order, worked out from the policies by hand.
var demoVerdicts = []string{
	"shop/web-1 shop/db-0 6379 TCP allow", // the canonical example
	"shop/web-2 shop/db-0 6379 TCP allow",
	"shop/api-1 shop/db-0 6379 TCP deny",
	"shop/web-1 shop/db-0 6380 TCP deny",
	"analytics/report-1 shop/db-0 6379 TCP deny",
	"203.0.113.7 shop/web-1 8080 TCP allow", // ipBlock 0.0.0.0/0, named port http
	"10.1.2.3 shop/web-1 8080 TCP deny",     // in the except
	"shop/api-1 shop/web-1 8080 TCP allow",
	"shop/db-0 shop/web-1 8080 TCP deny", // db has no egress
	"shop/web-1 shop/api-1 9000 TCP allow",
	"shop/web-1 shop/api-1 9090 TCP deny",
	"monitoring/prometheus-0 shop/web-1 9100 TCP allow", // named port metrics
	"monitoring/prometheus-0 shop/db-0 9121 TCP allow",  // metrics is another number on db
	"monitoring/prometheus-0 shop/db-0 6379 TCP deny",
	"analytics/report-1 shop/web-1 9100 TCP deny", // namespace not purpose=monitoring
	"shop/web-1 10.96.0.10 53 UDP allow",
	"shop/db-0 10.96.0.10 53 UDP deny",
	"fd00:244:1::11 shop/db-0 6379 TCP allow", // web-1's IPv6 address
	"fd00:244:2::51 shop/db-0 6379 TCP deny",  // report-1's
	"shop/web-3 shop/db-0 6379 TCP deny",      // absent
}

func TestSimulateJSONL(t *testing.T) {
	r := netpolctl(t, "simulate", "-f", demo, "--flows", demo+"/flows.txt", "-o", "jsonl")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	lines := parseJSONL(t, r.stdout)
	var got []string
	for _, l := range lines {
		got = append(got, l.short())
	}
	want := make([]string, len(demoVerdicts))
	for i, v := range demoVerdicts {
		want[i] = "0 " + v
	}
	assert.Equal(t, want, got)
	assert.Equal(t, "allowed by NetworkPolicy/shop/db-from-frontend rule 0", lines[0].Ingress)
	assert.Equal(t, "denied (isolated by NetworkPolicy, no rule matched)", lines[2].Ingress)
	assert.Equal(t, "source pod shop/web-3 does not exist", lines[19].Reason)

	// -o jsonl is the default; several -f make one state.
	r2 := netpolctl(t, "simulate", "-f", demo+"/cluster.yaml", "-f", demo+"/policies.yaml", "--flows", demo+"/flows.txt")
	require.Equal(t, 0, r2.code, r2.stderr)
	assert.Equal(t, r.stdout, r2.stdout)
}

func TestSimulateSteps(t *testing.T) {
	r := netpolctl(t, "simulate", "--steps", demo+"/steps", "--flows", demo+"/flows.txt", "-o", "jsonl")
	require.Equal(t, 0, r.code, r.stderr)
	lines := parseJSONL(t, r.stdout)
	require.Len(t, lines, 3*len(demoVerdicts))
	verdicts := map[string]string{}
	for i, l := range lines {
		require.Equal(t, i/len(demoVerdicts), l.Step, "steps in order, flows in input order")
		require.Equal(t, strings.Fields(demoVerdicts[i%len(demoVerdicts)])[:2], []string{l.Src, l.Dst})
		verdicts[fmt.Sprintf("%d %s %s %d", l.Step, l.Src, l.Dst, l.Port)] = l.Verdict
	}
	for key, want := range map[string]string{
		// web-3 appears at step 1 and may reach the database at once.
		"0 shop/web-3 shop/db-0 6379": "deny",
		"1 shop/web-3 shop/db-0 6379": "allow",
		"2 shop/web-3 shop/db-0 6379": "allow",
		// web-1 loses role=frontend at step 2: its access goes at once.
		"0 shop/web-1 shop/db-0 6379":               "allow",
		"1 shop/web-1 shop/db-0 6379":               "allow",
		"2 shop/web-1 shop/db-0 6379":               "deny",
		"2 fd00:244:1::11 shop/db-0 6379":           "deny",
		"2 203.0.113.7 shop/web-1 8080":             "deny", // web-ingress no longer selects it; default-deny does
		"2 shop/web-1 10.96.0.10 53":                "allow",
		"2 monitoring/prometheus-0 shop/web-1 9100": "allow",
		"2 shop/web-2 shop/db-0 6379":               "allow",
	} {
		assert.Equal(t, want, verdicts[key], key)
	}
}

func TestSimulateTable(t *testing.T) {
	r := netpolctl(t, "simulate", "-f", demo, "--flows", demo+"/flows.txt", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	rows := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, rows, 1+len(demoVerdicts))
	assert.Equal(t, []string{"STEP", "SRC", "DST", "PORT", "PROTO", "VERDICT", "WHY"}, strings.Fields(rows[0]))
	for i, row := range rows[1:] {
		f := strings.Fields(row)
		require.GreaterOrEqual(t, len(f), 7, row)
		assert.Equal(t, "0 "+demoVerdicts[i], strings.Join(f[:6], " "))
	}
	assert.Contains(t, rows[1], "egress: allowed by NetworkPolicy/shop/app-egress rule 0; ingress: allowed by NetworkPolicy/shop/db-from-frontend rule 0")
	assert.Contains(t, rows[len(rows)-1], "source pod shop/web-3 does not exist")
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{
			name: "canonical example",
			args: []string{"shop/web-1", "shop/db-0", "6379", "TCP"},
			want: []string{
				"shop/web-1 -> shop/db-0 TCP/6379 (10.244.1.11 -> 10.244.2.31): ALLOW",
				"Egress at shop/web-1: allowed by NetworkPolicy/shop/app-egress rule 0",
				"Ingress at shop/db-0: allowed by NetworkPolicy/shop/db-from-frontend rule 0",
				"no rules for ingress: isolates only",
			},
		},
		{
			name: "api tier to the database",
			args: []string{"shop/api-1", "shop/db-0", "6379", "TCP"},
			want: []string{
				": DENY",
				"Ingress at shop/db-0: denied (isolated by NetworkPolicy, no rule matched)",
				"peer not in [",
			},
		},
		{
			name: "from outside",
			args: []string{"203.0.113.7", "shop/web-1", "8080", "TCP"},
			want: []string{": ALLOW", "Egress at 203.0.113.7: not enforced here", "Ingress at shop/web-1: allowed by NetworkPolicy/shop/web-ingress rule 0"},
		},
		{
			name: "unrestricted source",
			args: []string{"analytics/report-1", "shop/db-0", "6379", "TCP"},
			want: []string{": DENY", "Egress at analytics/report-1: allowed (no policy decides)", "no policy selects analytics/report-1 for egress"},
		},
		{
			name: "absent pod",
			args: []string{"shop/web-3", "shop/db-0", "6379", "TCP"},
			want: []string{"DENY (source pod shop/web-3 does not exist: no packet can be sent)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := netpolctl(t, append([]string{"explain", "-f", demo}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stdout, w)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"flows.txt":     "shop/web-1 shop/db-0 6379 TCP\nshop/web-1 shop/db-0 abc TCP\nshop/web-1 shop/db-0 80 ICMP\n",
		"good.txt":      "shop/web-1 shop/db-0 6379 TCP\n",
		"cluster.yaml":  "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  lables: {role: web}\n",
		"kind.yaml":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n",
		"np.yaml":       "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]\n    portz: [{port: 80}]\n",
		"dup.yaml":      "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
		"steps/00.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
		"steps/01.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {role: yes}}\n",
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing file", []string{"simulate", "-f", p("nope.yaml"), "--flows", p("good.txt")}, []string{p("nope.yaml"), "no such file"}},
		{"missing flows file", []string{"simulate", "-f", demo, "--flows", p("nope.txt")}, []string{p("nope.txt")}},
		{"bad flow lines", []string{"simulate", "-f", demo, "--flows", p("flows.txt")}, []string{p("flows.txt") + `:2: PORT: "abc"`, p("flows.txt") + `:3: PROTOCOL: "ICMP"`}},
		{"bad YAML field", []string{"simulate", "-f", p("cluster.yaml"), "--flows", p("good.txt")}, []string{p("cluster.yaml") + "#2", "Pod shop/web", `unknown field "lables"`}},
		{"bad NetworkPolicy field", []string{"simulate", "-f", p("np.yaml"), "--flows", p("good.txt")}, []string{p("np.yaml") + "#1", "NetworkPolicy shop/np", `unknown field "portz"`}},
		{"unknown kind", []string{"simulate", "-f", p("kind.yaml"), "--flows", p("good.txt")}, []string{p("kind.yaml") + "#1", `kind "Deployment"`, "not supported"}},
		{"defined twice", []string{"simulate", "-f", p("dup.yaml"), "--flows", p("good.txt")}, []string{p("dup.yaml") + "#2", "Namespace/shop: defined again"}},
		{"bad step", []string{"simulate", "--steps", p("steps"), "--flows", p("good.txt")}, []string{p("steps/01.yaml") + "#1", "Pod shop/web", "metadata.labels"}},
		{"both -f and --steps", []string{"simulate", "-f", demo, "--steps", demo + "/steps", "--flows", p("good.txt")}, []string{"either -f or --steps"}},
		{"no flows", []string{"simulate", "-f", demo}, []string{"--flows"}},
		{"no input", []string{"simulate", "--flows", p("good.txt")}, []string{"-f PATH or --steps DIR"}},
		{"bad output format", []string{"simulate", "-f", demo, "--flows", p("good.txt"), "-o", "yaml"}, []string{`--output "yaml"`}},
		{"explain: bad YAML", []string{"explain", "-f", p("cluster.yaml"), "shop/web", "shop/web", "80", "TCP"}, []string{p("cluster.yaml") + "#2", `unknown field "lables"`}},
		{"explain: bad flow", []string{"explain", "-f", demo, "shop/web-1", "shop/db-0", "0", "TCP"}, []string{`arguments:1: PORT: "0"`}},
		{"explain: comment for a flow", []string{"explain", "-f", demo, "#shop/web-1", "shop/db-0", "80", "TCP"}, []string{"want SRC DST PORT PROTOCOL"}},
		{"explain: wrong number of arguments", []string{"explain", "-f", demo, "shop/web-1", "shop/db-0", "80"}, []string{"accepts 4 arg(s)"}},
		{"explain: no input", []string{"explain", "shop/web-1", "shop/db-0", "80", "TCP"}, []string{"-f PATH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := netpolctl(t, tc.args...)
			assert.Equal(t, 1, r.code, "exit code; stderr:\n%s", r.stderr)
			assert.Empty(t, r.stdout)
			assert.True(t, strings.HasPrefix(r.stderr, "netpolctl: "), r.stderr)
			assert.NotContains(t, r.stderr, "panic")
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
}

const invalidPolicies = `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: other}
status: {phase: Running, podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: d, namespace: z, labels: {app: d}}
status: {phase: Running, podIP: 10.0.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: e, namespace: z}
status: {phase: Running, podIP: 10.0.0.5}
---
# Invalid CIDR: isolates x/b and allows nothing, not even from its valid peer.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad-cidr, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/33}
    - podSelector: {}
---
# Invalid pod selector: every pod of z counts as selected.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad-selector, namespace: z}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: Bogus, values: [d]}]
  ingress:
  - {}
`

func TestInvalidPolicy(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cluster.yaml": invalidPolicies,
		"flows.txt": `x/a x/b 80 TCP
other/c x/b 80 TCP
10.0.0.1 x/b 80 TCP
x/b x/a 80 TCP
other/c x/a 80 TCP
other/c z/d 80 TCP
other/c z/e 80 TCP
z/d other/c 80 TCP
`,
	})
	cluster := filepath.Join(dir, "cluster.yaml")
	args := []string{"simulate", "-f", cluster, "--flows", filepath.Join(dir, "flows.txt")}
	r := netpolctl(t, args...)
	require.Equal(t, 0, r.code, r.stderr)
	warnings := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, warnings, 2, r.stderr)
	for _, w := range []string{"warning: " + cluster + "#6", "NetworkPolicy x/bad-cidr", "spec.ingress[0].from[0].ipBlock.cidr", "10.0.0.0/33"} {
		assert.Contains(t, warnings[0], w)
	}
	for _, w := range []string{"warning: " + cluster + "#7", "NetworkPolicy z/bad-selector", "spec.podSelector", "Bogus"} {
		assert.Contains(t, warnings[1], w)
	}
	var got []string
	for _, l := range parseJSONL(t, r.stdout) {
		got = append(got, fmt.Sprintf("%s %s %s", l.Src, l.Dst, l.Verdict))
	}
	assert.Equal(t, []string{
		"x/a x/b deny", // isolated, the valid podSelector peer allows nothing
		"other/c x/b deny",
		"10.0.0.1 x/b deny",
		"x/b x/a allow", // x/a is not selected
		"other/c x/a allow",
		"other/c z/d deny", // the bad selector selects every pod of z
		"other/c z/e deny",
		"z/d other/c allow", // egress is not isolated
	}, got)

	r = netpolctl(t, append(args, "--strict")...)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	for _, w := range []string{"netpolctl: ", cluster + "#6", "NetworkPolicy x/bad-cidr", "spec.ingress[0].from[0].ipBlock.cidr"} {
		assert.Contains(t, r.stderr, w)
	}
}

const demoAdmin = "../demo-admin"

// demoAdminVerdicts are the verdicts of demo-admin/flows.txt over the demo
// shop with the cluster-wide policies added, in file order.
var demoAdminVerdicts = []string{
	"shop/api-1 vault/secrets-0 8200 TCP allow", // Admin Accept overrides the shop's egress policy
	"analytics/report-1 vault/secrets-0 8200 TCP deny",
	"monitoring/prometheus-0 vault/secrets-0 8200 TCP deny", // Admin Deny beats the vault's allow-all
	"shop/db-0 kube-system/coredns-0 53 UDP allow",
	"shop/db-0 kube-system/coredns-0 53 TCP allow",
	"shop/db-0 10.96.0.10 53 UDP deny",
	"monitoring/prometheus-0 vault/secrets-0 9102 TCP allow",
	"monitoring/prometheus-0 kube-system/coredns-0 9153 TCP allow",
	"monitoring/prometheus-0 shop/db-0 9121 TCP allow",
	"analytics/report-1 shop/web-1 8080 TCP allow", // Pass, then the shop's NetworkPolicy
	"analytics/report-1 shop/web-1 9100 TCP deny",
	"analytics/report-1 shop/api-1 9000 TCP deny",
	"shop/web-1 analytics/report-1 53 UDP deny", // Baseline: report-1 is isolated by no NetworkPolicy
	"monitoring/prometheus-0 analytics/report-1 8080 TCP deny",
	"203.0.113.7 shop/web-1 8080 TCP allow",
	"analytics/report-1 192.168.10.2 10250 TCP deny", // a node peer
	"monitoring/prometheus-0 192.168.10.2 10250 TCP allow",
}

func TestSimulateClusterPolicies(t *testing.T) {
	r := netpolctl(t, "simulate", "-f", demo, "-f", demoAdmin, "--flows", demoAdmin+"/flows.txt", "-o", "jsonl")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	lines := parseJSONL(t, r.stdout)
	var got []string
	for _, l := range lines {
		got = append(got, strings.TrimPrefix(l.short(), "0 "))
	}
	assert.Equal(t, demoAdminVerdicts, got)
	assert.Equal(t, `denied by AdminNetworkPolicy/protect-vault rule 1 "nobody-else" (Admin tier)`, lines[2].Ingress)
	assert.Equal(t, `allowed by NetworkPolicy/shop/frontends-from-reports rule 0, after a Pass by AdminNetworkPolicy/reports-to-frontends rule 0 "shop-decides" (Admin tier)`, lines[9].Ingress)
	assert.Equal(t, `denied by BaselineAdminNetworkPolicy/default rule 0 "default-deny" (Baseline tier)`, lines[12].Ingress)
	assert.Equal(t, `denied by ClusterNetworkPolicy/analytics-off-nodes rule 0 "no-node-access" (Admin tier)`, lines[15].Egress)
}

func TestExplainClusterPolicies(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{
			args: []string{"analytics/report-1", "shop/web-1", "8080", "TCP"},
			want: []string{
				": ALLOW",
				`Ingress at shop/web-1: allowed by NetworkPolicy/shop/frontends-from-reports rule 0, after a Pass by AdminNetworkPolicy/reports-to-frontends rule 0 "shop-decides" (Admin tier)`,
				"matches: Pass, the rest of the Admin tier is skipped",
				"not reached (a Pass left the Admin tier)",
			},
		},
		{
			args: []string{"monitoring/prometheus-0", "vault/secrets-0", "8200", "TCP"},
			want: []string{
				": DENY",
				`Ingress at vault/secrets-0: denied by AdminNetworkPolicy/protect-vault rule 1 "nobody-else" (Admin tier)`,
				"matches: decides",
			},
		},
		{
			args: []string{"monitoring/prometheus-0", "analytics/report-1", "8080", "TCP"},
			want: []string{`Ingress at analytics/report-1: denied by BaselineAdminNetworkPolicy/default rule 0 "default-deny" (Baseline tier)`},
		},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := netpolctl(t, append([]string{"explain", "-f", demo, "-f", demoAdmin}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stdout, w)
			}
		})
	}
}

// TestStepsClusterPolicies changes a policy's priority and a node's labels
// between steps: the engine gets them as updates.
func TestStepsClusterPolicies(t *testing.T) {
	const ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec: {nodeName: n1}\nstatus: {phase: Running, podIP: 10.0.0.1}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\nspec: {nodeName: n1}\nstatus: {phase: Running, podIP: 10.0.0.2}\n---\n"
	node := func(labels string) string {
		return "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {" + labels + "}}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.1}]}\n---\n"
	}
	anp := func(name string, priority int, action string) string {
		return fmt.Sprintf("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: %s}\n"+
			"spec:\n  priority: %d\n  subject: {namespaces: {}}\n  ingress:\n  - {action: %s, from: [{namespaces: {}}]}\n---\n", name, priority, action)
	}
	const toNodes = "apiVersion: policy.networking.k8s.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {name: no-nodes}\n" +
		"spec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - {action: Deny, to: [{nodes: {matchLabels: {block: \"yes\"}}}]}\n---\n"
	dir := writeFiles(t, map[string]string{
		"steps/00.yaml": ns + node("") + anp("allow", 10, "Allow") + anp("deny", 20, "Deny") + toNodes,
		"steps/01.yaml": ns + node(`block: "yes"`) + anp("allow", 30, "Allow") + anp("deny", 20, "Deny") + toNodes,
		"steps/02.yaml": ns + node("") + anp("deny", 20, "Deny"),
		"flows.txt":     "x/a x/b 80 TCP\nx/a 192.168.0.1 10250 TCP\n",
	})
	r := netpolctl(t, "simulate", "--steps", filepath.Join(dir, "steps"), "--flows", filepath.Join(dir, "flows.txt"), "-o", "jsonl")
	require.Equal(t, 0, r.code, r.stderr)
	var got []string
	for _, l := range parseJSONL(t, r.stdout) {
		got = append(got, l.short())
	}
	assert.Equal(t, []string{
		"0 x/a x/b 80 TCP allow", "0 x/a 192.168.0.1 10250 TCP allow",
		"1 x/a x/b 80 TCP deny", "1 x/a 192.168.0.1 10250 TCP deny", // priority 30 now after the Deny; the node got the label
		"2 x/a x/b 80 TCP deny", "2 x/a 192.168.0.1 10250 TCP allow",
	}, got)
}

func TestBadClusterPolicyInput(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.txt":     "x/a x/a 80 TCP\n",
		"field.yaml":   "apiVersion: policy.networking.k8s.io/v1beta1\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subjet: {}}\n",
		"invalid.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: bad}\nspec:\n  priority: 5000\n  subject: {namespaces: {}}\n",
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	r := netpolctl(t, "simulate", "-f", p("field.yaml"), "--flows", p("good.txt"))
	assert.NotEqual(t, 0, r.code)
	for _, w := range []string{p("field.yaml") + "#1", "ClusterNetworkPolicy c", `unknown field "subjet"`} {
		assert.Contains(t, r.stderr, w)
	}
	r = netpolctl(t, "simulate", "--strict", "-f", p("invalid.yaml"), "--flows", p("good.txt"))
	assert.NotEqual(t, 0, r.code)
	for _, w := range []string{p("invalid.yaml") + "#2", "AdminNetworkPolicy", "bad", "spec.priority"} {
		assert.Contains(t, r.stderr, w)
	}
}
