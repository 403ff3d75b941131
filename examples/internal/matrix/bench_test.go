package matrix

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
)

// generated writes a cluster of n pods, perNS to a namespace, each
// namespace with a default deny, its frontends reaching its backends on
// http and a monitoring namespace scraping every metrics port, and loads it.
func generated(tb testing.TB, n, perNS int) *manifest.State {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring, labels: {purpose: monitoring}}\n")
	for k := range (n + perNS - 1) / perNS {
		ns := fmt.Sprintf("team-%d", k)
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: %[1]s}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend-from-frontend, namespace: %[1]s}
spec:
  podSelector: {matchLabels: {role: backend}}
  ingress: [{from: [{podSelector: {matchLabels: {role: frontend}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-egress, namespace: %[1]s}
spec:
  podSelector: {matchLabels: {role: frontend}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {role: backend}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-monitoring, namespace: %[1]s}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {purpose: monitoring}}}], ports: [{port: metrics}]}]
`, ns)
	}
	for i := range n {
		ns, role := fmt.Sprintf("team-%d", i/perNS), "backend"
		if i%3 == 0 {
			role = "frontend"
		}
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata: {name: svc-%d, namespace: %s, labels: {role: %s}}
spec:
  nodeName: node-1
  containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]}]
status: {phase: Running, podIP: 10.%d.%d.%d}
`, i, ns, role, 1+i/65536, (i/256)%256, i%256)
	}
	path := filepath.Join(tb.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	st, err := manifest.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// BenchmarkMatrix measures the matrix of n pods (each with two container
// ports: n·(n-1)·2 flows) beside its baseline, the same flows decided
// without a trace (what any enumeration of the verdicts costs), and the
// rendering of the page.
func BenchmarkMatrix(b *testing.B) {
	for _, n := range []int{30, 100} {
		st := generated(b, n, 10)
		flows := float64(n * (n - 1) * 2)
		b.Run(fmt.Sprintf("pods=%d/baseline-decide", n), func(b *testing.B) {
			for b.Loop() {
				mem, err := reach.Compile(st, nil)
				if err != nil {
					b.Fatal(err)
				}
				ev := reach.Evaluator{State: st, Backend: mem}
				for f := range reach.Flows(st, reach.Selection{}) {
					ev.Decide(f.Flow, false)
				}
			}
			b.ReportMetric(flows, "flows")
		})
		b.Run(fmt.Sprintf("pods=%d/compute", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Compute(Input{State: st}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flows, "flows")
		})
		m, err := Compute(Input{State: st})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("pods=%d/html", n), func(b *testing.B) {
			w := &countingWriter{}
			for b.Loop() {
				w.n = 0
				if err := m.WriteHTML(w, HTMLOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n)/1024, "KiB")
		})
		b.Run(fmt.Sprintf("pods=%d/text", n), func(b *testing.B) {
			for b.Loop() {
				if err := m.WriteText(io.Discard, TextOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
