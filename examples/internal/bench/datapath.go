package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/debug"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/vishvananda/netns"

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
	// warmup connects precede each series (servers started, caches warm).
	warmup = 50
	// connsPerWorker sizes a batch of the connection-rate loop.
	connsPerWorker = 32
	// maxConnBatches bounds the connection-rate loop whatever the clock.
	maxConnBatches = 100_000
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
)

// addBenchObjects adds the client, the server and the two policies that
// isolate them: the server for ingress (TCP 8080 from the client allowed),
// the client for egress (TCP 8080 to the server allowed), so that a
// connection runs through a rule chain at both ends.
func addBenchObjects(c *policytest.Cluster) {
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
// real pods on one lab node, with and without policy.
type DatapathFigures struct {
	Client string `json:"client"`
	Server string `json:"server"`
	Port   int    `json:"port"`
	// Pods is the number of synthetic pods (all local endpoints) beside
	// the two real ones in every policy run.
	Pods            int     `json:"pods"`
	Samples         int     `json:"samples"`
	Parallel        int     `json:"parallel"`
	DurationSeconds float64 `json:"durationSeconds"`
	// BaselineStart and BaselineEnd are the same lab with no table at all,
	// measured before the first and after the last policy run.
	BaselineStart DatapathRun `json:"baselineStart"`
	BaselineEnd   DatapathRun `json:"baselineEnd"`
	// Baseline is what overheads and ratios compare with: the mean of
	// BaselineStart and BaselineEnd.
	Baseline BaselineReference `json:"baseline"`
	// BaselineConntrack is the same lab with connection tracking on and no
	// policy: a table of its own whose only rule accepts established
	// flows. Every node that runs kube-proxy or any stateful filter pays
	// this; it splits the overhead into tracking and policy.
	BaselineConntrack DatapathRun `json:"baselineConntrack"`
	Runs              []PolicyRun `json:"runs"`
	Notes             []string    `json:"notes"`
}

// BaselineReference is the reference of every overhead and ratio.
type BaselineReference struct {
	LatencyMedianMicros float64 `json:"latencyMedianMicros"`
	ConnsPerSecond      float64 `json:"connsPerSecond"`
}

// DatapathRun is one series of measurements.
type DatapathRun struct {
	// LatencyMedianMicros and LatencyP90Micros are of Result.Latency over
	// sequential client→server connects: connect() to completed handshake
	// (SYN → SYN-ACK as the client sees it).
	LatencyMedianMicros float64 `json:"latencyMedianMicros"`
	LatencyP90Micros    float64 `json:"latencyP90Micros"`
	LatencySamples      int     `json:"latencySamples"`
	LatencyFailed       int     `json:"latencyFailed"`
	// ConnsPerSecond is completed handshakes per second with Parallel
	// probes in flight for DurationSeconds (ConnsSeconds measured).
	ConnsPerSecond float64 `json:"connsPerSecond"`
	Conns          int     `json:"conns"`
	ConnsFailed    int     `json:"connsFailed"`
	ConnsSeconds   float64 `json:"connsSeconds"`
}

// PolicyRun is the datapath with K synthetic policies programmed.
type PolicyRun struct {
	Policies       int     `json:"policies"`
	RuleLists      int     `json:"ruleLists"`
	Endpoints      int     `json:"endpoints"`
	CompileSeconds float64 `json:"compileSeconds"`
	SyncSeconds    float64 `json:"syncSeconds"`
	DatapathRun
	OverheadMedianMicros float64 `json:"overheadMedianMicros"`
	ConnsRatio           float64 `json:"connsRatio"`
	// The same against BaselineConntrack: what the policy adds on top of
	// connection tracking.
	OverheadOverConntrackMicros float64 `json:"overheadOverConntrackMicros"`
	ConnsRatioOverConntrack     float64 `json:"connsRatioOverConntrack"`
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
	for _, p := range []lab.PodSpec{
		{Name: client, IPs: []netip.Addr{clientIP}},
		{Name: benchNamespace + "/" + serverName, IPs: []netip.Addr{serverIP}},
	} {
		if err := l.AddPod(ctx, p); err != nil {
			return nil, err
		}
	}
	fig := &DatapathFigures{
		Client: client + " " + clientIP.String(), Server: benchNamespace + "/" + serverName + " " + serverIP.String(),
		Port: servePort, Pods: cfg.Pods, Samples: cfg.DatapathSamples, Parallel: cfg.DatapathParallel,
		DurationSeconds: cfg.DatapathDuration.Seconds(),
		Notes: []string{
			"latency is connect() to completed handshake on a non-blocking socket, one connect at a time; the machine is shared and noisy: compare baselineStart with baselineEnd to see the drift between two identical runs",
			"connsPerSecond counts completed handshakes with `parallel` connects in flight; each includes the lab's socket creation in the client namespace, so it measures the whole lab path, the filter being one part",
			"overheadMedianMicros and connsRatio compare with `baseline`, the mean of baselineStart and baselineEnd",
			"the baseline has no table at all in the node namespace (hence no conntrack there); baselineConntrack has only a rule accepting established flows, which turns connection tracking on; the policy runs have every synthetic pod as a local endpoint (the largest verdict maps)",
			"the conntrack table of the node namespace is flushed before every series, and the Go collector is off during a series (the lab's servers and probes run in this process, and a collection marking the backend's state would otherwise weigh on the policy runs only)",
		},
	}
	m := &meter{l: l, ns: ns, cfg: cfg, probe: lab.Probe{Src: client, Dst: serverIP, Port: servePort, Protocol: lab.TCP}}

	if exists, err := tableExists(ns, tableName); err != nil || exists {
		return nil, errors.Join(err, fmt.Errorf("table %s exists before the baseline", tableName))
	}
	progress("datapath: baseline (no table)")
	if fig.BaselineStart, err = m.measure(ctx); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	progress("datapath: baseline with connection tracking (no policy)")
	if err := addConntrackTable(ns); err != nil {
		return nil, err
	}
	fig.BaselineConntrack, err = m.measure(ctx)
	if derr := deleteTable(ns, conntrackTable); err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("conntrack baseline: %w", err)
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
	for _, k := range cfg.DatapathPolicies {
		progress("datapath: %d policies: compile and Sync", k)
		run, err := m.policyRun(ctx, s, k)
		if err != nil {
			return nil, fmt.Errorf("%d policies: %w", k, err)
		}
		fig.Runs = append(fig.Runs, *run)
	}
	err = s.done(ctx)
	s = nil
	if err != nil {
		return nil, err
	}
	time.Sleep(settle)

	progress("datapath: baseline again (no table)")
	if fig.BaselineEnd, err = m.measure(ctx); err != nil {
		return nil, fmt.Errorf("baseline at the end: %w", err)
	}
	fig.Baseline = BaselineReference{
		LatencyMedianMicros: round((fig.BaselineStart.LatencyMedianMicros+fig.BaselineEnd.LatencyMedianMicros)/2, 2),
		ConnsPerSecond:      round((fig.BaselineStart.ConnsPerSecond+fig.BaselineEnd.ConnsPerSecond)/2, 1),
	}
	for i := range fig.Runs {
		r := &fig.Runs[i]
		r.OverheadMedianMicros = round(r.LatencyMedianMicros-fig.Baseline.LatencyMedianMicros, 2)
		r.ConnsRatio = ratio(r.ConnsPerSecond, fig.Baseline.ConnsPerSecond)
		r.OverheadOverConntrackMicros = round(r.LatencyMedianMicros-fig.BaselineConntrack.LatencyMedianMicros, 2)
		r.ConnsRatioOverConntrack = ratio(r.ConnsPerSecond, fig.BaselineConntrack.ConnsPerSecond)
	}
	return fig, nil
}

// meter measures the client→server path.
type meter struct {
	l     *lab.Lab
	ns    netns.NsHandle
	cfg   Config
	probe lab.Probe
}

// policyRun programs the synthetic cluster with k policies plus the bench
// objects and measures.
func (m *meter) policyRun(ctx context.Context, s *backendSession, k int) (*PolicyRun, error) {
	o, err := generate(ctx, m.cfg.synthetic(m.cfg.Pods, k), addBenchObjects)
	if err != nil {
		return nil, err
	}
	comp, err := compile(ctx, policy.Config{}, o, false)
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
	denied := m.probe
	denied.Port = deniedPort
	r := m.l.Probe(ctx, []lab.Probe{denied})[0]
	if r.Err != nil {
		return nil, r.Err
	}
	run.DeniedPortBlocked = !r.Connected
	return run, nil
}

// measure runs a latency series and a connection-rate series.
func (m *meter) measure(ctx context.Context) (DatapathRun, error) {
	var run DatapathRun
	if err := m.l.ForgetConnections(); err != nil {
		return run, err
	}
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(liveHeap() + gcHeadroom))
	one := []lab.Probe{m.probe}
	for range warmup {
		if r := m.l.Probe(ctx, one)[0]; r.Err != nil {
			return run, r.Err
		}
	}

	lat := make([]time.Duration, 0, m.cfg.DatapathSamples)
	deadline := time.Now().Add(latencyTimeLimit)
	for range m.cfg.DatapathSamples {
		if time.Now().After(deadline) {
			break
		}
		r := m.l.Probe(ctx, one)[0]
		switch {
		case r.Err != nil:
			return run, r.Err
		case r.Connected:
			lat = append(lat, r.Latency)
		default:
			run.LatencyFailed++
		}
	}
	if len(lat) == 0 {
		return run, fmt.Errorf("no connect from %s to %s:%d completed (%d failed)", m.probe.Src, m.probe.Dst, m.probe.Port, run.LatencyFailed)
	}
	run.LatencySamples = len(lat)
	run.LatencyMedianMicros = micros(percentile(lat, 50))
	run.LatencyP90Micros = micros(percentile(lat, 90))

	batch := make([]lab.Probe, m.cfg.DatapathParallel*connsPerWorker)
	for i := range batch {
		batch[i] = m.probe
	}
	start := time.Now()
	for n := 0; n < maxConnBatches && time.Since(start) < m.cfg.DatapathDuration; n++ {
		for _, r := range m.l.Probe(ctx, batch) {
			switch {
			case r.Err != nil:
				return run, r.Err
			case r.Connected:
				run.Conns++
			default:
				run.ConnsFailed++
			}
		}
	}
	elapsed := time.Since(start)
	run.ConnsSeconds = seconds(elapsed)
	run.ConnsPerSecond = round(float64(run.Conns)/elapsed.Seconds(), 1)
	return run, nil
}
