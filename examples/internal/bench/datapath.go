package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/policytest"
)

// The two real pods. Their addresses are outside the synthetic pods'
// 10.128.0.0/9 and outside every synthetic ipBlock (10.0.0.0/8,
// 192.168.0.0/16), so no synthetic rule can match them by accident.
const (
	benchNamespace = "bench"
	clientName     = "client"
	serverName     = "server"
	servePort      = 8080
	// deniedPort is served by the lab like any other but allowed by no
	// policy: a probe to it checks that the policy is enforced.
	deniedPort = 9999
	// warmup rounds precede each latency series (caches warm).
	warmup = 50
	// settle is the pause after a Sync or Cleanup before measuring, for the
	// kernel to finish freeing the replaced ruleset.
	settle = 250 * time.Millisecond
	// gcHeadroom is how far the heap may grow while the collector is off
	// during a series before it runs anyway.
	gcHeadroom = 2 << 30
)

var (
	clientIP = netip.MustParseAddr("172.30.0.1")
	serverIP = netip.MustParseAddr("172.30.0.2")
	// The reference pair, on the lab's second node, which has no filter:
	// the same path shape, measured interleaved with the pair above.
	refClientIP = netip.MustParseAddr("172.30.1.1")
	refServerIP = netip.MustParseAddr("172.30.1.2")
)

// refNamespace holds the reference pair; it exists only in the lab (no
// policy or engine ever sees it).
const refNamespace = "reference"

// addBenchPods adds the client and the server.
func addBenchPods(c *policytest.Cluster) {
	c.SetNamespace(policytest.Namespace(benchNamespace, map[string]string{"purpose": "bench"}))
	http := policytest.ContainerPort("http", servePort, corev1.ProtocolTCP)
	c.SetPod(policytest.Pod(benchNamespace, clientName,
		policytest.WithLabels(map[string]string{"bench": clientName}),
		policytest.WithIPs(clientIP.String()), policytest.OnNode("node-0"),
		policytest.WithContainerPorts(http)))
	c.SetPod(policytest.Pod(benchNamespace, serverName,
		policytest.WithLabels(map[string]string{"bench": serverName}),
		policytest.WithIPs(serverIP.String()), policytest.OnNode("node-0"),
		policytest.WithContainerPorts(http)))
}

// addBenchObjects adds the client, the server and the two policies that
// isolate them: the server for ingress (TCP 8080 from the client allowed),
// the client for egress (TCP 8080 to the server allowed), so that a
// connection runs through a rule chain at both ends.
func addBenchObjects(c *policytest.Cluster) {
	addBenchPods(c)
	c.SetPolicy(policytest.NetworkPolicy(benchNamespace, "server-ingress",
		policytest.WithPodSelector(policytest.MatchLabels(map[string]string{"bench": serverName})),
		policytest.WithPolicyTypes(networkingv1.PolicyTypeIngress),
		policytest.WithIngress(policytest.IngressRule(
			policytest.Peers(policytest.PodPeer(policytest.MatchLabels(map[string]string{"bench": clientName}))),
			policytest.Ports(policytest.Port(servePort))))))
	c.SetPolicy(policytest.NetworkPolicy(benchNamespace, "client-egress",
		policytest.WithPodSelector(policytest.MatchLabels(map[string]string{"bench": clientName})),
		policytest.WithPolicyTypes(networkingv1.PolicyTypeEgress),
		policytest.WithEgress(policytest.EgressRule(
			policytest.Peers(policytest.PodPeer(policytest.MatchLabels(map[string]string{"bench": serverName}))),
			policytest.Ports(policytest.Port(servePort))))))
}

// DatapathFigures are first-packet latency and connection rate between two
// real pods on one lab node (the node under test), each measured
// interleaved with the same between two pods on a second lab node with no
// filter at all (the reference).
type DatapathFigures struct {
	Client          string `json:"client"`
	Server          string `json:"server"`
	ReferenceClient string `json:"referenceClient"`
	ReferenceServer string `json:"referenceServer"`
	Port            int    `json:"port"`
	// Pods is the number of synthetic pods (all local endpoints) beside
	// the two real ones in every policy run.
	Pods            int     `json:"pods"`
	Samples         int     `json:"samples"`
	Parallel        int     `json:"parallel"`
	DurationSeconds float64 `json:"durationSeconds"`
	// Control has no table on either node: what the method reads when
	// nothing differs (its resolution and any asymmetry of the two nodes).
	Control DatapathRun `json:"control"`
	// Conntrack has, on the node under test, a table whose only rule
	// accepts established flows: connection tracking on, no policy. Every
	// node with kube-proxy or any stateful filter pays this; it splits the
	// policy runs' overhead into tracking and policy.
	Conntrack DatapathRun `json:"conntrack"`
	// NoPolicy has the backend programmed with every pod (the synthetic
	// ones and the bench pair) and no NetworkPolicy at all: the node as it
	// runs before anyone writes a policy.
	NoPolicy DatapathRun `json:"noPolicy"`
	// Runs add the synthetic policies and two policies that isolate the
	// bench pair (client egress, server ingress), so that a connection
	// runs through a rule list at both ends.
	Runs []PolicyRun `json:"runs"`
	// SourceValidation is the cost of source validation (every endpoint
	// with its interface), measured with the first policy count.
	SourceValidation *SourceValidationFigures `json:"sourceValidation,omitempty"`
	// VerdictLog is the datapath with the kernel verdict log off and on
	// (Config.DatapathVerdictLog), nil when not requested.
	VerdictLog *VerdictLogFigures `json:"verdictLog,omitempty"`
	Notes      []string           `json:"notes"`
}

// DatapathRun is one paired measurement: the path under test and the
// reference path, interleaved.
type DatapathRun struct {
	// LatencyMedianMicros and LatencyP90Micros are of connect() on a
	// blocking socket, client→server on the node under test: the kernel
	// completes the handshake (SYN, SYN-ACK, through the filter both ways)
	// inside that call. ReferenceLatency* are the same on the reference.
	LatencyMedianMicros          float64 `json:"latencyMedianMicros"`
	LatencyP90Micros             float64 `json:"latencyP90Micros"`
	ReferenceLatencyMedianMicros float64 `json:"referenceLatencyMedianMicros"`
	ReferenceLatencyP90Micros    float64 `json:"referenceLatencyP90Micros"`
	// OverheadMedianMicros is LatencyMedianMicros minus
	// ReferenceLatencyMedianMicros; PairedOverheadMedianMicros is the
	// median of the per-round differences.
	OverheadMedianMicros       float64 `json:"overheadMedianMicros"`
	PairedOverheadMedianMicros float64 `json:"pairedOverheadMedianMicros"`
	// LatencySamples counts rounds where both sides connected.
	LatencySamples int `json:"latencySamples"`
	LatencyFailed  int `json:"latencyFailed"`
	// LatencyInterrupted counts rounds left out because a signal
	// interrupted a connect (its time includes the signal's handling).
	LatencyInterrupted int `json:"latencyInterrupted"`
	// ConnsPerSecond is completed connections per second with Parallel
	// workers connecting and closing in a loop, during the slices given to
	// the side under test (ConnsSeconds in all); ReferenceConnsPerSecond
	// the same for the reference, in the slices between. ConnsRatio is
	// their ratio.
	ConnsPerSecond          float64 `json:"connsPerSecond"`
	ReferenceConnsPerSecond float64 `json:"referenceConnsPerSecond"`
	ConnsRatio              float64 `json:"connsRatio"`
	Conns                   int     `json:"conns"`
	ReferenceConns          int     `json:"referenceConns"`
	ConnsFailed             int     `json:"connsFailed"`
	ConnsSeconds            float64 `json:"connsSeconds"`
	// ConnectErrors counts the failed connects of both series by error.
	ConnectErrors map[string]int `json:"connectErrors,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
}

// PolicyRun is the datapath with K synthetic policies programmed on the
// node under test.
type PolicyRun struct {
	Policies       int     `json:"policies"`
	RuleLists      int     `json:"ruleLists"`
	Endpoints      int     `json:"endpoints"`
	CompileSeconds float64 `json:"compileSeconds"`
	SyncSeconds    float64 `json:"syncSeconds"`
	DatapathRun
	// The paired overhead minus that of the Conntrack and NoPolicy runs:
	// what the policies add on top of connection tracking, and on top of
	// the backend with no policy. The ratios likewise: ConnsRatio over the
	// Conntrack and NoPolicy runs' (each measured against the reference).
	PairedOverheadOverConntrackMicros float64 `json:"pairedOverheadOverConntrackMicros"`
	PairedOverheadOverNoPolicyMicros  float64 `json:"pairedOverheadOverNoPolicyMicros"`
	ConnsRatioOverConntrack           float64 `json:"connsRatioOverConntrack"`
	ConnsRatioOverNoPolicy            float64 `json:"connsRatioOverNoPolicy"`
	// DeniedPortBlocked: a connect from the client to a port no policy
	// allows did not complete (the policy is enforced).
	DeniedPortBlocked bool `json:"deniedPortBlocked"`
}

func runDatapath(ctx context.Context, cfg Config, l *lab.Lab, progress func(string, ...any)) (_ *DatapathFigures, err error) {
	ns, err := l.NodeNS(0)
	if err != nil {
		return nil, err
	}
	client := benchNamespace + "/" + clientName
	refClient := refNamespace + "/" + clientName
	for _, p := range []lab.PodSpec{
		{Name: client, IPs: []netip.Addr{clientIP}},
		{Name: benchNamespace + "/" + serverName, IPs: []netip.Addr{serverIP}},
		{Name: refClient, Node: 1, IPs: []netip.Addr{refClientIP}},
		{Name: refNamespace + "/" + serverName, Node: 1, IPs: []netip.Addr{refServerIP}},
	} {
		if err := l.AddPod(ctx, p); err != nil {
			return nil, err
		}
	}
	fig := &DatapathFigures{
		Client: client + " " + clientIP.String(), Server: benchNamespace + "/" + serverName + " " + serverIP.String(),
		ReferenceClient: refClient + " " + refClientIP.String(), ReferenceServer: refNamespace + "/" + serverName + " " + refServerIP.String(),
		Port: servePort, Pods: cfg.Pods, Samples: cfg.DatapathSamples, Parallel: cfg.DatapathParallel,
		DurationSeconds: cfg.DatapathDuration.Seconds(),
		Notes: []string{
			"the node under test (lab node 0) and the reference node (lab node 1, no table, no conntrack) have the same shape: client and server pods on routed veths; every series alternates between them, so drift of the machine falls on both",
			"latency: one thread pinned to one CPU connects a blocking socket, test and reference in turn (the order alternating); the kernel runs the whole handshake inside connect() on this path, so the figure is the CPU time of the first packets through both nodes' stacks and filters",
			"connsPerSecond: `parallel` workers connect and close in a loop; the target side switches every 50 ms (test, ref, ref, test, …); each side's rate is its connections over its slices' time",
			"control has no table on either node: its overhead is the method's error; conntrack has only a rule accepting established flows on the node under test; the policy runs have every synthetic pod as a local endpoint (the largest verdict maps)",
			"the conntrack tables are flushed before every run, and the Go collector is off during a run (the lab's servers run in this process)",
		},
	}
	m := &pairedMeter{
		l: l, samples: cfg.DatapathSamples, parallel: cfg.DatapathParallel, duration: cfg.DatapathDuration,
		paths: [2]path{
			sideTest: {client: client, server: serverIP, port: servePort},
			sideRef:  {client: refClient, server: refServerIP, port: servePort},
		},
	}

	if exists, err := tableExists(ns, tableName); err != nil || exists {
		return nil, errors.Join(err, fmt.Errorf("table %s exists before the control run", tableName))
	}
	progress("datapath: control (no table on either node)")
	if fig.Control, err = m.measure(ctx); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}

	progress("datapath: connection tracking, no policy")
	if err := addConntrackTable(ns); err != nil {
		return nil, err
	}
	fig.Conntrack, err = m.measure(ctx)
	if derr := deleteTable(ns, conntrackTable); err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("conntrack run: %w", err)
	}
	time.Sleep(settle)

	s, err := openBackend(ns)
	if err != nil {
		return nil, err
	}
	defer func() {
		if s != nil {
			if derr := s.done(ctx); err == nil {
				err = derr
			}
		}
	}()
	progress("datapath: the backend with every pod and no policy")
	noPolicy, err := policyRun(ctx, m, s, cfg, 0, addBenchPods)
	if err != nil {
		return nil, fmt.Errorf("no policy: %w", err)
	}
	fig.NoPolicy = noPolicy.DatapathRun
	for _, k := range cfg.DatapathPolicies {
		progress("datapath: %d policies: compile and Sync", k)
		run, err := policyRun(ctx, m, s, cfg, k, addBenchObjects)
		if err != nil {
			return nil, fmt.Errorf("%d policies: %w", k, err)
		}
		run.PairedOverheadOverConntrackMicros = round(run.PairedOverheadMedianMicros-fig.Conntrack.PairedOverheadMedianMicros, 2)
		run.PairedOverheadOverNoPolicyMicros = round(run.PairedOverheadMedianMicros-fig.NoPolicy.PairedOverheadMedianMicros, 2)
		run.ConnsRatioOverConntrack = ratio(run.ConnsRatio, fig.Conntrack.ConnsRatio)
		run.ConnsRatioOverNoPolicy = ratio(run.ConnsRatio, fig.NoPolicy.ConnsRatio)
		fig.Runs = append(fig.Runs, *run)
	}
	progress("datapath: source validation on and off, %d policies", cfg.DatapathPolicies[0])
	if fig.SourceValidation, err = sourceValidationRuns(ctx, m, s, cfg, cfg.DatapathPolicies[0]); err != nil {
		return nil, fmt.Errorf("source validation: %w", err)
	}
	err = s.done(ctx)
	s = nil
	if err == nil && cfg.DatapathVerdictLog {
		fig.VerdictLog, err = runVerdictLog(ctx, m, ns, cfg, slices.Max(cfg.DatapathPolicies), progress)
	}
	return fig, err
}

// policyRun programs the synthetic cluster with k policies plus the bench
// objects on the node under test and measures.
func policyRun(ctx context.Context, m *pairedMeter, s *backendSession, cfg Config, k int, extra func(*policytest.Cluster)) (*PolicyRun, error) {
	return policyRunWith(ctx, m, s, cfg, policy.Config{}, k, extra)
}

// policyRunWith is policyRun with the engine configured by pcfg.
func policyRunWith(ctx context.Context, m *pairedMeter, s *backendSession, cfg Config, pcfg policy.Config, k int, extra func(*policytest.Cluster)) (*PolicyRun, error) {
	o, err := generate(ctx, cfg.synthetic(cfg.Pods, k), extra)
	if err != nil {
		return nil, err
	}
	comp, err := compile(ctx, pcfg, o, false)
	if err != nil {
		return nil, err
	}
	snap := comp.engine.Snapshot()
	start := time.Now()
	if _, err := s.be.Sync(ctx, snap); err != nil {
		return nil, err
	}
	run := &PolicyRun{
		Policies: k, RuleLists: comp.counts.RuleLists, Endpoints: comp.counts.Endpoints,
		CompileSeconds: seconds(comp.elapsed), SyncSeconds: seconds(time.Since(start)),
	}
	comp, snap = nil, nil // garbage before the series starts
	time.Sleep(settle)
	if run.DatapathRun, err = m.measure(ctx); err != nil {
		return nil, err
	}
	test := m.paths[sideTest]
	r := m.l.Probe(ctx, []lab.Probe{{Src: test.client, Dst: test.server, Port: deniedPort, Protocol: lab.TCP}})[0]
	if r.Err != nil {
		return nil, r.Err
	}
	run.DeniedPortBlocked = !r.Connected
	return run, nil
}
