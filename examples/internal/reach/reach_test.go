package reach_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/examples/internal/reach"
	"github.com/palisade-net/palisade/examples/internal/sim"
	"github.com/palisade-net/palisade/policy/ir"
)

const demo = "../../demo"

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []reach.Port
		wantErr []string
	}{
		{in: "", want: nil},
		{in: "80", want: []reach.Port{{80, ir.TCP}}},
		{in: "53/udp, 80,443/TCP,80/tcp", want: []reach.Port{{80, ir.TCP}, {443, ir.TCP}, {53, ir.UDP}}},
		{in: "9/SCTP", want: []reach.Port{{9, ir.SCTP}}},
		{in: "0,70000,http,80/ICMP", wantErr: []string{`"0": port "0"`, `"70000"`, `"http"`, `"80/ICMP": protocol "ICMP"`}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := reach.ParsePorts(tc.in)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.True(t, strings.HasPrefix(err.Error(), "--ports: "), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNewSelectionBadSelector(t *testing.T) {
	_, err := reach.NewSelection(nil, "app in (a", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--selector "app in (a"`)
	_, err = reach.NewSelection(nil, "", "x")
	assert.ErrorContains(t, err, "--ports")
}

type podTweak func(*corev1.Pod)

func makePod(ns, name, ip string, tweaks ...podTweak) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	for _, tw := range tweaks {
		tw(p)
	}
	return p
}

func withPorts(ports ...corev1.ContainerPort) podTweak {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c", Ports: ports})
	}
}

func TestPodsAndPorts(t *testing.T) {
	st := &manifest.State{Pods: []*corev1.Pod{
		makePod("a", "host", "10.0.0.1", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
		makePod("a", "noip", ""),
		makePod("a", "done", "10.0.0.3", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		makePod("a", "web", "10.0.0.4", withPorts(
			corev1.ContainerPort{Name: "http", ContainerPort: 8080},
			corev1.ContainerPort{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			corev1.ContainerPort{Name: "http-again", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		), withPorts(corev1.ContainerPort{ContainerPort: 80})),
		makePod("b", "db", "10.0.1.5"),
	}}
	st.Sort()
	names := func(ps []*corev1.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return out
	}
	all, err := reach.NewSelection(nil, "", "")
	require.NoError(t, err)
	assert.Equal(t, []string{"a/web", "b/db"}, names(reach.Pods(st, all)))
	assert.Equal(t, []string{"b/db"}, names(reach.Pods(st, reach.Selection{Namespaces: []string{"b", "nope"}})))
	sel, err := reach.NewSelection(nil, "app notin (db)", "")
	require.NoError(t, err)
	assert.Equal(t, []string{"a/web"}, names(reach.Pods(st, sel)))

	web := st.Pod("a", "web")
	assert.Equal(t, []reach.DestPort{
		{Port: reach.Port{Port: 80, Protocol: ir.TCP}},
		{Port: reach.Port{Port: 8080, Protocol: ir.TCP}, Name: "http"},
		{Port: reach.Port{Port: 53, Protocol: ir.UDP}, Name: "dns"},
	}, reach.Ports(web, all))
	assert.Nil(t, reach.Ports(st.Pod("b", "db"), all), "no container ports: no flow to it")
	given := reach.Selection{Ports: []reach.Port{{8080, ir.TCP}, {9, ir.UDP}}}
	assert.Equal(t, []reach.DestPort{{Port: reach.Port{Port: 8080, Protocol: ir.TCP}, Name: "http"}, {Port: reach.Port{Port: 9, Protocol: ir.UDP}}},
		reach.Ports(web, given))

	var got []string
	for f := range reach.Flows(st, all) {
		got = append(got, fmt.Sprintf("%s %s %d %s %s", f.Src, f.Dst, f.Port, f.Protocol, f.PortName))
	}
	assert.Equal(t, []string{"b/db a/web 80 TCP ", "b/db a/web 8080 TCP http", "b/db a/web 53 UDP dns"}, got)
}

// TestDemoFlows enumerates the demo shop and checks every verdict against
// simulate's path (sim.MemoryProber on the same flows), with and without
// explaining, and a few verdicts by hand.
func TestDemoFlows(t *testing.T) {
	st, err := manifest.Load(demo+"/cluster.yaml", demo+"/policies.yaml")
	require.NoError(t, err)
	var warnings []string
	mem, err := reach.Compile(st, func(s string) { warnings = append(warnings, s) })
	require.NoError(t, err)
	assert.Empty(t, warnings)
	ev := reach.Evaluator{State: st, Backend: mem}

	var fl []reach.Flow
	for f := range reach.Flows(st, reach.Selection{}) {
		fl = append(fl, f)
	}
	// 6 pods: each of the 5 with container ports (9 ports in all) receives
	// from the other 5; report-1 has none.
	require.Len(t, fl, 45)
	assert.True(t, slices.IsSortedFunc(fl, func(a, b reach.Flow) int {
		return strings.Compare(a.Src.String()+" "+a.Dst.String(), b.Src.String()+" "+b.Dst.String())
	}), "flows in source, destination order")

	var resolved []flows.Resolved
	for _, f := range fl {
		resolved = append(resolved, flows.Resolve(st, f.Flow))
	}
	want, err := sim.MemoryProber{Backend: mem}.Probe(t.Context(), sim.Step{}, resolved)
	require.NoError(t, err)
	byFlow := map[string]reach.Verdict{}
	for i, f := range fl {
		v := ev.Decide(f.Flow, true)
		fast := ev.Decide(f.Flow, false)
		assert.Equal(t, want[i].Verdict, v.Result.Verdict, "%s", f.Flow)
		assert.Equal(t, want[i].Egress, v.Result.Egress, "%s", f.Flow)
		assert.Equal(t, want[i].Ingress, v.Result.Ingress, "%s", f.Flow)
		assert.Equal(t, v.Result.Verdict, fast.Result.Verdict, "%s: explained and evaluated agree", f.Flow)
		assert.Equal(t, v.Allowed(), ev.Allowed(f.Flow), "%s", f.Flow)
		assert.Equal(t, v.Verdict.Egress, fast.Verdict.Egress, "%s", f.Flow)
		assert.Equal(t, v.Verdict.Ingress, fast.Verdict.Ingress, "%s", f.Flow)
		byFlow[fmt.Sprintf("%s %s %d", f.Src, f.Dst, f.Port)] = v
	}
	ok := byFlow["shop/web-1 shop/db-0 6379"]
	assert.True(t, ok.Allowed())
	assert.Equal(t, ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "db-from-frontend"}, ok.Verdict.Ingress.Origin)
	assert.Equal(t, ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "app-egress"}, ok.Verdict.Egress.Origin)
	denied := byFlow["shop/api-1 shop/db-0 6379"]
	assert.False(t, denied.Allowed())
	assert.False(t, denied.Verdict.Ingress.Allowed)
	assert.Equal(t, ir.TierNetworkPolicy, denied.Verdict.Ingress.Tier)
	assert.Equal(t, "ingress: denied (isolated by NetworkPolicy/shop/allow-monitoring, NetworkPolicy/shop/db-from-frontend, NetworkPolicy/shop/default-deny; no rule matched)",
		denied.By(), "only the denying end is named, with the policies that isolate it")
	assert.Equal(t, "egress: "+ok.Result.Egress+"; ingress: "+ok.Result.Ingress, ok.By())
}

func TestDecideAbsentPod(t *testing.T) {
	st, err := manifest.Load(demo + "/cluster.yaml")
	require.NoError(t, err)
	mem, err := reach.Compile(st, nil)
	require.NoError(t, err)
	f, err := flows.ParseFields([]string{"shop/web-9", "shop/db-0", "6379", "TCP"})
	require.NoError(t, err)
	v := reach.Evaluator{State: st, Backend: mem}.Decide(f, false)
	assert.False(t, v.Allowed())
	assert.Equal(t, "source pod shop/web-9 does not exist", v.Result.Reason)
	assert.Equal(t, memory.Verdict{}, v.Verdict)
}

// BenchmarkDecide decides every flow among 100 pods in 10 isolated
// namespaces (isolatedCluster; 9900 flows): only evaluated (Allowed, the
// baseline), decided without and with the trace.
func BenchmarkDecide(b *testing.B) {
	st := isolatedCluster(100, 10)
	mem, err := reach.Compile(st, nil)
	require.NoError(b, err)
	ev := reach.Evaluator{State: st, Backend: mem}
	b.Run("baseline=Allowed", func(b *testing.B) {
		for b.Loop() {
			for f := range reach.Flows(st, reach.Selection{}) {
				ev.Allowed(f.Flow)
			}
		}
	})
	for _, explain := range []bool{false, true} {
		b.Run(fmt.Sprintf("Decide/explain=%v", explain), func(b *testing.B) {
			for b.Loop() {
				for f := range reach.Flows(st, reach.Selection{}) {
					ev.Decide(f.Flow, explain)
				}
			}
		})
	}
}
