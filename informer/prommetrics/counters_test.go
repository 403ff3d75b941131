package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer/prommetrics"
	"github.com/palisade-net/palisade/policy/ir"
)

// fakeReader returns what is set, counting reads; with block set, a read
// waits until block is closed.
type fakeReader struct {
	mu    sync.Mutex
	c     backend.Counters
	err   error
	reads int
	block chan struct{}
}

func (f *fakeReader) Counters(ctx context.Context) (backend.Counters, error) {
	f.mu.Lock()
	f.reads++
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.c, f.err
}

func (f *fakeReader) set(c backend.Counters, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c, f.err = c, err
}

func (f *fakeReader) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

var (
	npWeb = ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "web"}
	anp   = ir.Origin{Kind: "AdminNetworkPolicy", Name: "guard"}
)

func sample() backend.Counters {
	return backend.Counters{
		Rules: []backend.RuleCounter{
			{List: "anp:guard:ingress", Tier: ir.TierAdmin, Origin: anp, Direction: ir.Ingress, Index: 0, Name: "deny-all", Action: ir.Deny, Count: backend.Count{Packets: 4, Bytes: 400}},
			{List: "np:shop/web:ingress", Tier: ir.TierNetworkPolicy, Origin: npWeb, Direction: ir.Ingress, Index: 0, Action: ir.Allow, Count: backend.Count{Packets: 2, Bytes: 120}},
			{List: "np:shop/web:ingress", Tier: ir.TierNetworkPolicy, Origin: npWeb, Direction: ir.Ingress, Index: 1, Action: ir.Allow, Count: backend.Count{Packets: 3, Bytes: 180}},
		},
		Defaults:     []backend.DefaultCounter{{Tier: ir.TierNetworkPolicy, Direction: ir.Egress, Action: ir.Deny, Count: backend.Count{Packets: 7, Bytes: 700}}},
		Unattributed: backend.Count{Packets: 1, Bytes: 60},
	}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const policyWant = `
# HELP palisade_policy_bytes_total Bytes of the packets counted by policy_packets_total.
# TYPE palisade_policy_bytes_total counter
palisade_policy_bytes_total{action="allow",direction="ingress",kind="NetworkPolicy",namespace="shop",policy="web",tier="NetworkPolicy"} 300
palisade_policy_bytes_total{action="deny",direction="ingress",kind="AdminNetworkPolicy",namespace="",policy="guard",tier="Admin"} 400
# HELP palisade_policy_default_packets_total Packets of new connections decided by a tier's default: isolated endpoints that no NetworkPolicy rule allowed.
# TYPE palisade_policy_default_packets_total counter
palisade_policy_default_packets_total{action="deny",direction="egress",tier="NetworkPolicy"} 7
# HELP palisade_policy_packets_total Packets of new connections decided by a policy's rules, per policy, direction and action (packet filter counters).
# TYPE palisade_policy_packets_total counter
palisade_policy_packets_total{action="allow",direction="ingress",kind="NetworkPolicy",namespace="shop",policy="web",tier="NetworkPolicy"} 5
palisade_policy_packets_total{action="deny",direction="ingress",kind="AdminNetworkPolicy",namespace="",policy="guard",tier="Admin"} 4
# HELP palisade_policy_unattributed_packets_total Packets matched by rules of Palisade's rule lists whose comment could not be mapped to a policy rule.
# TYPE palisade_policy_unattributed_packets_total counter
palisade_policy_unattributed_packets_total 1
`

func TestCounterCollectorPerPolicy(t *testing.T) {
	f := &fakeReader{c: sample()}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(policyWant),
		"palisade_policy_packets_total", "palisade_policy_bytes_total", "palisade_policy_default_packets_total",
		"palisade_policy_unattributed_packets_total"))
	n, err := testutil.GatherAndCount(reg, "palisade_policy_rule_packets_total")
	require.NoError(t, err)
	assert.Zero(t, n, "no rule series by default")
}

func TestCounterCollectorPerRule(t *testing.T) {
	f := &fakeReader{c: sample()}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{Detail: prommetrics.DetailRule})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	want := `
# HELP palisade_policy_rule_packets_total Packets of new connections decided by one rule of a policy (packet filter counters).
# TYPE palisade_policy_rule_packets_total counter
palisade_policy_rule_packets_total{action="allow",direction="ingress",kind="NetworkPolicy",namespace="shop",policy="web",rule="0",rule_name="",tier="NetworkPolicy"} 2
palisade_policy_rule_packets_total{action="allow",direction="ingress",kind="NetworkPolicy",namespace="shop",policy="web",rule="1",rule_name="",tier="NetworkPolicy"} 3
palisade_policy_rule_packets_total{action="deny",direction="ingress",kind="AdminNetworkPolicy",namespace="",policy="guard",rule="0",rule_name="deny-all",tier="Admin"} 4
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "palisade_policy_rule_packets_total"))
	n, err := testutil.GatherAndCount(reg, "palisade_policy_packets_total")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the per-policy series stay")
}

func TestCounterCollectorOff(t *testing.T) {
	f := &fakeReader{c: sample()}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{Detail: prommetrics.DetailOff})
	require.NoError(t, err)
	n := testutil.CollectAndCount(c)
	assert.Equal(t, 2, n, "only the read metrics")
	assert.Zero(t, f.count(), "off never reads")
}

// TestCounterCollectorInterval: scrapes within the interval share one
// read; a list gone from the next read is gone from the series.
func TestCounterCollectorInterval(t *testing.T) {
	f := &fakeReader{c: sample()}
	clk := &clock{t: time.Unix(1000, 0)}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{Interval: 5 * time.Second, Now: clk.now})
	require.NoError(t, err)
	assert.Equal(t, 2, testutil.CollectAndCount(c, "palisade_policy_packets_total"))
	clk.add(4 * time.Second)
	next := sample()
	next.Rules = next.Rules[1:] // the admin policy is gone
	f.set(next, nil)
	assert.Equal(t, 2, testutil.CollectAndCount(c, "palisade_policy_packets_total"), "within the interval: the last read")
	assert.Equal(t, 1, f.count())
	clk.add(time.Second)
	assert.Equal(t, 1, testutil.CollectAndCount(c, "palisade_policy_packets_total"), "the removed policy's series is dropped")
	assert.Equal(t, 2, f.count())

	// A failed read is counted and keeps the last values.
	clk.add(5 * time.Second)
	f.set(backend.Counters{}, errors.New("netlink: boom"))
	assert.Equal(t, 1, testutil.CollectAndCount(c, "palisade_policy_packets_total"))
	assert.Equal(t, 1.0, testutil.ToFloat64(metricOnly(c, "palisade_policy_counters_read_errors_total")))
}

// slowReader takes d of clk's time per read.
type slowReader struct {
	fakeReader
	clk *clock
	d   time.Duration
}

func (s *slowReader) Counters(ctx context.Context) (backend.Counters, error) {
	s.clk.add(s.d)
	return s.fakeReader.Counters(ctx)
}

// TestCounterCollectorSpacesSlowReads: a read that takes 2 s puts the next
// one 20 s after it started, not 5 s.
func TestCounterCollectorSpacesSlowReads(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	f := &slowReader{fakeReader: fakeReader{c: sample()}, clk: clk, d: 2 * time.Second}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{Interval: 5 * time.Second, Now: clk.now})
	require.NoError(t, err)
	testutil.CollectAndCount(c)
	assert.Equal(t, 2.0, testutil.ToFloat64(metricOnly(c, "palisade_policy_counters_read_seconds")))
	clk.add(10 * time.Second) // 12 s after the start of the first read
	testutil.CollectAndCount(c)
	assert.Equal(t, 1, f.count())
	clk.add(8 * time.Second) // 20 s
	testutil.CollectAndCount(c)
	assert.Equal(t, 2, f.count())
}

// TestCounterCollectorSlowRead: a scrape waits for a slow read at most
// Wait, and the next scrape gets what the read returned; a single read
// runs at a time.
func TestCounterCollectorSlowRead(t *testing.T) {
	block := make(chan struct{})
	f := &fakeReader{c: sample(), block: block}
	c, err := prommetrics.NewCounterCollector(f, prommetrics.CounterConfig{Wait: 20 * time.Millisecond, Interval: time.Nanosecond})
	require.NoError(t, err)
	assert.Zero(t, testutil.CollectAndCount(c, "palisade_policy_packets_total"), "no read finished yet")
	assert.Zero(t, testutil.CollectAndCount(c, "palisade_policy_packets_total"))
	assert.Equal(t, 1, f.count(), "one read at a time")
	close(block)
	require.Eventually(t, func() bool { return testutil.CollectAndCount(c, "palisade_policy_packets_total") == 2 },
		10*time.Second, 10*time.Millisecond)
}

// metricOnly collects c and keeps the metrics called name.
func metricOnly(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c, name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestCounterCollectorConfig(t *testing.T) {
	_, err := prommetrics.NewCounterCollector(nil, prommetrics.CounterConfig{})
	assert.Error(t, err)
	_, err = prommetrics.NewCounterCollector(&fakeReader{}, prommetrics.CounterConfig{Detail: "rules"})
	assert.ErrorContains(t, err, `"rules"`)
	for _, s := range []string{"policy", "rule", "off"} {
		d, err := prommetrics.ParseCounterDetail(s)
		assert.NoError(t, err)
		assert.Equal(t, s, string(d))
	}
	_, err = prommetrics.ParseCounterDetail("")
	assert.Error(t, err)
}

// BenchmarkCounterCollectorScrape gathers a registry holding the collector
// of 10k policies (2 directions, 2 rules each; the read itself is cached),
// per policy and per rule, beside a registry of the informer's metrics
// alone as the baseline.
func BenchmarkCounterCollectorScrape(b *testing.B) {
	var c backend.Counters
	for p := range 10000 {
		o := ir.Origin{Kind: "NetworkPolicy", Namespace: fmt.Sprintf("ns-%d", p%500), Name: fmt.Sprintf("pol-%d", p)}
		for _, dir := range []ir.Direction{ir.Ingress, ir.Egress} {
			for i := range 2 {
				c.Rules = append(c.Rules, backend.RuleCounter{Tier: ir.TierNetworkPolicy, Origin: o, Direction: dir, Index: i, Action: ir.Allow, Count: backend.Count{Packets: uint64(p), Bytes: uint64(p * 60)}})
			}
		}
	}
	b.Run("baseline=informer-metrics", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		_, err := prommetrics.New(reg)
		require.NoError(b, err)
		for b.Loop() {
			_, err := reg.Gather()
			require.NoError(b, err)
		}
	})
	for _, d := range []prommetrics.CounterDetail{prommetrics.DetailPolicy, prommetrics.DetailRule} {
		b.Run("detail="+string(d), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			_, err := prommetrics.New(reg)
			require.NoError(b, err)
			cc, err := prommetrics.NewCounterCollector(&fakeReader{c: c}, prommetrics.CounterConfig{Detail: d, Interval: time.Hour})
			require.NoError(b, err)
			require.NoError(b, reg.Register(cc))
			for b.Loop() {
				mfs, err := reg.Gather()
				require.NoError(b, err)
				require.NotEmpty(b, mfs)
			}
		})
	}
}
