package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseDiff reads diff's jsonl output, checking every line is one object
// with the documented fields.
func parseDiff(t *testing.T, out string) []diffLine {
	t.Helper()
	var lines []diffLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var raw map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &raw), sc.Text())
		for _, f := range []string{"src", "dst", "port", "protocol", "before", "after", "beforeBy", "afterBy"} {
			require.Contains(t, raw, f, sc.Text())
		}
		var l diffLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		lines = append(lines, l)
	}
	return lines
}

// shortDiff renders a line as "SRC DST PORT PROTOCOL before->after".
func shortDiff(ls []diffLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Src+" "+l.Dst+" "+strconv.Itoa(int(l.Port))+" "+l.Protocol+" "+l.Before+"->"+l.After)
	}
	return out
}

const demoCluster, demoPolicies = demo + "/cluster.yaml", demo + "/policies.yaml"

func TestDiff(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"delete.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-from-frontend
  namespace: shop
  annotations: {netpolctl.palisade.dev/delete: "true"}
`,
		"new.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: api}}}]
    ports: [{port: 6379}]
`,
		"selector.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: api}}}]
    ports: [{protocol: TCP, port: 6379}]
`,
		"anp.yaml": `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: freeze-db}
spec:
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {role: db}}}}
  ingress:
  - name: no-one
    action: Deny
    from: [{namespaces: {}}]
`,
		"same.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: unrelated, namespace: analytics}
spec:
  podSelector: {matchLabels: {app: nothing-has-this}}
`,
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	allowedToDB := []string{"shop/web-1 shop/db-0 6379 TCP allow->deny", "shop/web-2 shop/db-0 6379 TCP allow->deny"}
	tests := []struct {
		name      string
		args      []string
		want      []string
		beforeBy  string // of the first line
		afterBy   string
		wantStats string
	}{
		{name: "deletion by annotation", args: []string{"--proposed", p("delete.yaml")}, want: allowedToDB,
			beforeBy:  "ingress: allowed by NetworkPolicy/shop/db-from-frontend rule 0",
			afterBy:   "ingress: denied (isolated by NetworkPolicy/shop/allow-monitoring, NetworkPolicy/shop/default-deny; no rule matched)",
			wantStats: "diff: 45 flows among the selected pods compared: 2 change (2 allow->deny, 0 deny->allow)"},
		{name: "deletion by flag", args: []string{"--delete", "NetworkPolicy/shop/db-from-frontend"}, want: allowedToDB},
		{name: "new policy", args: []string{"--proposed", p("new.yaml")}, want: []string{"shop/api-1 shop/db-0 6379 TCP deny->allow"},
			beforeBy: "ingress: denied (isolated by NetworkPolicy/shop/allow-monitoring, NetworkPolicy/shop/db-from-frontend, NetworkPolicy/shop/default-deny; no rule matched)",
			afterBy:  "ingress: allowed by NetworkPolicy/shop/db-from-api rule 0"},
		{name: "changed selector", args: []string{"--proposed", p("selector.yaml")},
			want: []string{"shop/api-1 shop/db-0 6379 TCP deny->allow", "shop/web-1 shop/db-0 6379 TCP allow->deny", "shop/web-2 shop/db-0 6379 TCP allow->deny"}},
		{name: "admin tier deny", args: []string{"--proposed", p("anp.yaml")},
			want:    []string{"monitoring/prometheus-0 shop/db-0 9121 TCP allow->deny", "shop/web-1 shop/db-0 6379 TCP allow->deny", "shop/web-2 shop/db-0 6379 TCP allow->deny"},
			afterBy: `ingress: denied by AdminNetworkPolicy/freeze-db rule 0 "no-one" (Admin tier)`},
		{name: "namespace and selector", args: []string{"--proposed", p("anp.yaml"), "-n", "shop", "-l", "role in (db,frontend)"}, want: allowedToDB,
			wantStats: "diff: 12 flows among the selected pods compared"},
		{name: "given ports", args: []string{"--proposed", p("anp.yaml"), "--ports", "6379,53/udp"}, want: allowedToDB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := netpolctl(t, append([]string{"diff", "-f", demoCluster, "-f", demoPolicies, "-o", "jsonl"}, tc.args...)...)
			require.Equal(t, 1, r.code, "exit code: changes; stderr:\n%s", r.stderr)
			lines := parseDiff(t, r.stdout)
			assert.Equal(t, tc.want, shortDiff(lines))
			if tc.beforeBy != "" {
				assert.Contains(t, lines[0].BeforeBy, tc.beforeBy)
			}
			if tc.afterBy != "" {
				assert.Contains(t, lines[len(lines)-1].AfterBy, tc.afterBy)
			}
			assert.Contains(t, r.stderr, tc.wantStats)
			table := netpolctl(t, append([]string{"diff", "-f", demoCluster, "-f", demoPolicies}, tc.args...)...)
			assert.Equal(t, 1, table.code)
			rows := strings.Split(strings.TrimSpace(table.stdout), "\n")
			require.Len(t, rows, len(tc.want)+1, table.stdout)
			assert.Regexp(t, `^SRC +DST +PORT +PROTO +CHANGE +BEFORE +AFTER$`, rows[0])
			for i, w := range tc.want {
				f := strings.Fields(w)
				assert.Regexp(t, "^"+f[0]+" +"+f[1]+" +"+f[2]+" .*"+f[3]+" +"+f[4]+" ", rows[i+1])
			}
		})
	}

	t.Run("no change", func(t *testing.T) {
		r := netpolctl(t, "diff", "-f", demoCluster, "-f", demoPolicies, "--proposed", p("same.yaml"))
		assert.Equal(t, 0, r.code, r.stderr)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "0 change")
	})
}

func TestDiffFlowsFromLog(t *testing.T) {
	dir := writeFiles(t, map[string]string{"verdicts.jsonl": `{"time":"2026-12-03T18:00:00Z","node":"node-1","src":"shop/web-1","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"allow","tier":"NetworkPolicy","policy":"NetworkPolicy/shop/db-from-frontend","rule":"0"}
{"time":"2026-12-03T18:00:01Z","node":"node-1","src":"shop/web-1","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"allow","tier":"NetworkPolicy","policy":"NetworkPolicy/shop/db-from-frontend","rule":"0"}

{"time":"2026-12-03T18:00:02Z","node":"node-2","src":"10.244.2.12","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"allow","tier":"NetworkPolicy","policy":"NetworkPolicy/shop/db-from-frontend","rule":"0"}
{"time":"2026-12-03T18:00:03Z","node":"node-1","src":"shop/api-1","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"deny","tier":"NetworkPolicy","policy":"","rule":"isolated"}
{"time":"2026-12-03T18:00:04Z","node":"node-1","src":"shop/web-1","dst":"shop/db-0","port":0,"protocol":"ICMP","verdict":"deny","tier":"NetworkPolicy","policy":"","rule":"isolated"}
{"time":"2026-12-03T18:00:05Z","node":"node-1","src":"shop/web-1","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"allow","tier":"NetworkPolicy","policy":"NetworkPolicy/shop/db-from-frontend","rule":"0"}
`,
		"bad.jsonl": `{"time":"2026-12-03T18:00:00Z","node":"n","src":"shop/","dst":"shop/db-0","port":6379,"protocol":"TCP","verdict":"allow","tier":"","policy":"","rule":""}
not json
{"time":"2026-12-03T18:00:00Z","node":"n","src":"shop/web-1","dst":"shop/db-0","port":0,"protocol":"UDP","verdict":"maybe","tier":"","policy":"","rule":""}
`})
	r := netpolctl(t, "diff", "-f", demoCluster, "-f", demoPolicies, "--delete", "networkpolicy/shop/db-from-frontend",
		"--flows-from-log", filepath.Join(dir, "verdicts.jsonl"), "-o", "jsonl")
	require.Equal(t, 1, r.code, r.stderr)
	lines := parseDiff(t, r.stdout)
	assert.Equal(t, []string{"shop/web-1 shop/db-0 6379 TCP allow->deny", "10.244.2.12 shop/db-0 6379 TCP allow->deny"}, shortDiff(lines))
	assert.Equal(t, 3, lines[0].Count)
	assert.Equal(t, 3, lines[0].LoggedAllow)
	assert.Equal(t, 1, lines[1].Count)
	assert.Contains(t, r.stderr, "diff: 3 distinct flows of 6 log records (1 of other protocols skipped) compared: 2 change")
	assert.NotContains(t, r.stderr, "note:", "the log agrees with the current objects")
	// Against the pods without any policy, shop/api-1 -> shop/db-0, logged
	// denied, is allowed: the log is stale for that flow.
	noop := filepath.Join(dir, "noop.yaml")
	require.NoError(t, os.WriteFile(noop, []byte(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x, namespace: analytics}
spec: {podSelector: {matchLabels: {app: nothing}}}
`), 0o644))
	stale := netpolctl(t, "diff", "-f", demoCluster, "--proposed", noop, "--flows-from-log", filepath.Join(dir, "verdicts.jsonl"))
	assert.Equal(t, 0, stale.code, stale.stderr)
	assert.Contains(t, stale.stderr, "diff: note: 1 flows of the log were logged only with the verdict the current objects do not give")

	table := netpolctl(t, "diff", "-f", demoCluster, "-f", demoPolicies, "--delete", "networkpolicy/shop/db-from-frontend",
		"--flows-from-log", filepath.Join(dir, "verdicts.jsonl"))
	assert.Regexp(t, `^SRC +DST +PORT +PROTO +CHANGE +SEEN +BEFORE +AFTER\n`, table.stdout)
	assert.Regexp(t, `\nshop/web-1 +shop/db-0 +6379 +TCP +allow->deny +3 +egress`, table.stdout)

	bad := filepath.Join(dir, "bad.jsonl")
	r = netpolctl(t, "diff", "-f", demoCluster, "--delete", "networkpolicy/shop/x", "--flows-from-log", bad)
	assert.Equal(t, 2, r.code)
	for _, w := range []string{
		bad + `:1: src: "shop/" is not namespace/pod`,
		bad + ":2: not a verdict-log record",
		bad + `:3: port: Required value`,
		`verdict: Unsupported value: "maybe"`,
	} {
		assert.Contains(t, r.stderr, w)
	}
}

func TestDiffErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"bad.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec:
  podSelector: {}
  ingress: [{portz: []}]
`,
		"gone.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: never-was
  namespace: shop
  annotations: {netpolctl.palisade.dev/delete: "true"}
`,
		"invalid.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad-cidr, namespace: shop}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]
`,
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad proposed field", []string{"--proposed", p("bad.yaml")}, []string{p("bad.yaml") + "#1", "NetworkPolicy shop/np", `unknown field "portz"`}},
		{"deleting what is not there", []string{"--proposed", p("gone.yaml")}, []string{p("gone.yaml") + "#1: cannot delete NetworkPolicy/shop/never-was: not in the current objects"}},
		{"bad --delete", []string{"--delete", "networkpolicy/web"}, []string{`--delete "networkpolicy/web": want NetworkPolicy/NAMESPACE/NAME`}},
		{"nothing proposed", nil, []string{"nothing proposed"}},
		{"bad selector", []string{"--delete", "networkpolicy/shop/web-ingress", "-l", "role in (db"}, []string{`--selector "role in (db"`}},
		{"bad ports", []string{"--delete", "networkpolicy/shop/web-ingress", "--ports", "http"}, []string{`--ports: "http"`}},
		{"log with selection", []string{"--delete", "networkpolicy/shop/web-ingress", "--flows-from-log", "x", "-n", "shop"}, []string{"-n, -l and --ports do not apply"}},
		{"bad output", []string{"--delete", "networkpolicy/shop/web-ingress", "-o", "yaml"}, []string{`--output "yaml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := netpolctl(t, append([]string{"diff", "-f", demoCluster, "-f", demoPolicies}, tc.args...)...)
			assert.Equal(t, 2, r.code, "exit code: trouble; stderr:\n%s", r.stderr)
			assert.Empty(t, r.stdout)
			assert.True(t, strings.HasPrefix(r.stderr, "netpolctl: "), r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
		})
	}

	// A proposed policy that fails validation is reported, naming file,
	// object and field, and its safe form is what the diff shows: it
	// isolates db-0 and allows nothing.
	r := netpolctl(t, "diff", "-f", demoCluster, "-f", demoPolicies, "--proposed", p("invalid.yaml"), "-o", "jsonl")
	assert.Equal(t, 0, r.code, "db-0 is isolated already: no change; stderr:\n%s", r.stderr)
	assert.Contains(t, r.stderr, "warning: "+p("invalid.yaml")+"#1")
	assert.Contains(t, r.stderr, "spec.ingress[0].from[0].ipBlock.cidr")
}
