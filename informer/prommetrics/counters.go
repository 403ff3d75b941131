package prommetrics

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-net/palisade/backend"
)

// CounterDetail says which policy counter series a CounterCollector
// exports.
type CounterDetail string

const (
	// DetailPolicy exports one series per policy object, direction and
	// action (the default): at most a few per policy.
	DetailPolicy CounterDetail = "policy"
	// DetailRule exports the per-policy series and one per rule as well:
	// as many as the policies have rules.
	DetailRule CounterDetail = "rule"
	// DetailOff exports no policy counter series (the read-cost metrics
	// stay, at zero).
	DetailOff CounterDetail = "off"
)

// ParseCounterDetail maps "policy", "rule" and "off" to a CounterDetail;
// any other text, the empty one included, is an error.
func ParseCounterDetail(s string) (CounterDetail, error) {
	switch d := CounterDetail(s); d {
	case DetailPolicy, DetailRule, DetailOff:
		return d, nil
	}
	return "", fmt.Errorf("unknown counter detail %q: want policy, rule or off", s)
}

// Defaults of CounterConfig.
const (
	DefaultCounterInterval    = 5 * time.Second
	DefaultCounterWait        = time.Second
	DefaultCounterReadTimeout = 30 * time.Second
)

// CounterConfig configures a CounterCollector. The zero value works: per
// policy, read at most every 5 s, a scrape waits at most 1 s.
type CounterConfig struct {
	// Detail is DetailPolicy when empty.
	Detail CounterDetail
	// Interval is the least time between the starts of two reads of the
	// packet filter: scrapes within it get the last read's values.
	// DefaultCounterInterval when zero. A read that took longer than a
	// tenth of Interval spaces the next one to ten times its duration, so
	// reading costs at most a tenth of the time whatever the size.
	Interval time.Duration
	// Wait bounds how long a scrape waits for a read it started; past it
	// the scrape gets the last read's values (none before the first read
	// ends) and the read finishes in the background for the next scrape.
	// DefaultCounterWait when zero.
	Wait time.Duration
	// ReadTimeout bounds a read itself (its context). DefaultCounterReadTimeout
	// when zero.
	ReadTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// CounterCollector exports a backend's rule counters (backend.CounterReader)
// as Prometheus counters, reading the packet filter on scrape: at most once
// per Interval, one read at a time, and never holding a scrape longer than
// Wait. Every scrape exports what the last successful read returned, so a
// rule list that is gone from the packet filter is gone from the next
// scrape after the next read (no stale series). Its series, all prefixed
// palisade_:
//
//	policy_packets_total, policy_bytes_total {tier, kind, namespace, policy, direction, action}
//	policy_rule_packets_total, policy_rule_bytes_total {..., rule, rule_name}   (DetailRule)
//	policy_default_packets_total, policy_default_bytes_total {tier, direction, action}
//	policy_unattributed_packets_total, policy_unattributed_bytes_total
//	policy_counters_read_seconds (gauge: the last read), policy_counters_read_errors_total
//
// The packet filter's counters restart at zero when a rule list's rules
// are rewritten (a changed policy) and after a reboot; rate() and
// increase() handle that as any counter reset.
type CounterCollector struct {
	reader backend.CounterReader
	cfg    CounterConfig

	policyPackets, policyBytes   *prometheus.Desc
	rulePackets, ruleBytes       *prometheus.Desc
	defaultPackets, defaultBytes *prometheus.Desc
	unattrPackets, unattrBytes   *prometheus.Desc
	readSeconds, readErrors      *prometheus.Desc

	mu       sync.Mutex
	last     *backend.Counters // nil before the first successful read
	readAt   time.Time         // start of the last read, successful or not
	inFlight chan struct{}     // closed when the running read ends; nil when none runs
	took     time.Duration
	errors   uint64
}

var _ prometheus.Collector = (*CounterCollector)(nil)

// NewCounterCollector returns a collector of r's counters; register it on
// a prometheus.Registerer. It reads nothing until the first scrape. A nil
// r or an unknown Detail is an error.
func NewCounterCollector(r backend.CounterReader, cfg CounterConfig) (*CounterCollector, error) {
	if r == nil {
		return nil, fmt.Errorf("prommetrics: a CounterReader is required")
	}
	if cfg.Detail == "" {
		cfg.Detail = DetailPolicy
	}
	if _, err := ParseCounterDetail(string(cfg.Detail)); err != nil {
		return nil, fmt.Errorf("prommetrics: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultCounterInterval
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultCounterWait
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultCounterReadTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	policy := []string{"tier", "kind", "namespace", "policy", "direction", "action"}
	rule := append(append([]string{}, policy...), "rule", "rule_name")
	def := []string{"tier", "direction", "action"}
	desc := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &CounterCollector{
		reader:         r,
		cfg:            cfg,
		policyPackets:  desc("policy_packets_total", "Packets of new connections decided by a policy's rules, per policy, direction and action (packet filter counters).", policy),
		policyBytes:    desc("policy_bytes_total", "Bytes of the packets counted by policy_packets_total.", policy),
		rulePackets:    desc("policy_rule_packets_total", "Packets of new connections decided by one rule of a policy (packet filter counters).", rule),
		ruleBytes:      desc("policy_rule_bytes_total", "Bytes of the packets counted by policy_rule_packets_total.", rule),
		defaultPackets: desc("policy_default_packets_total", "Packets of new connections decided by a tier's default: isolated endpoints that no NetworkPolicy rule allowed.", def),
		defaultBytes:   desc("policy_default_bytes_total", "Bytes of the packets counted by policy_default_packets_total.", def),
		unattrPackets:  desc("policy_unattributed_packets_total", "Packets matched by rules of Palisade's rule lists whose comment could not be mapped to a policy rule.", nil),
		unattrBytes:    desc("policy_unattributed_bytes_total", "Bytes of the packets counted by policy_unattributed_packets_total.", nil),
		readSeconds:    desc("policy_counters_read_seconds", "Duration of the last read of the packet filter's counters.", nil),
		readErrors:     desc("policy_counters_read_errors_total", "Reads of the packet filter's counters that failed.", nil),
	}, nil
}

// Describe sends every series' description.
func (c *CounterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.policyPackets, c.policyBytes, c.rulePackets, c.ruleBytes,
		c.defaultPackets, c.defaultBytes, c.unattrPackets, c.unattrBytes, c.readSeconds, c.readErrors} {
		ch <- d
	}
}

// Collect reads the counters when the last read is older than Interval
// (waiting at most Wait for it) and sends the series of the last
// successful read.
func (c *CounterCollector) Collect(ch chan<- prometheus.Metric) {
	if c.cfg.Detail != DetailOff {
		c.refresh()
	}
	c.mu.Lock()
	last, took, errs := c.last, c.took, c.errors
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.readSeconds, prometheus.GaugeValue, took.Seconds())
	ch <- prometheus.MustNewConstMetric(c.readErrors, prometheus.CounterValue, float64(errs))
	if last == nil || c.cfg.Detail == DetailOff {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range last.PerPolicy() {
		l := []string{string(p.Tier), p.Origin.Kind, p.Origin.Namespace, p.Origin.Name, strings.ToLower(string(p.Direction)), strings.ToLower(string(p.Action))}
		counter(c.policyPackets, p.Packets, l...)
		counter(c.policyBytes, p.Bytes, l...)
	}
	if c.cfg.Detail == DetailRule {
		for _, r := range last.Rules {
			l := []string{string(r.Tier), r.Origin.Kind, r.Origin.Namespace, r.Origin.Name, strings.ToLower(string(r.Direction)), strings.ToLower(string(r.Action)),
				strconv.Itoa(r.Index), r.Name}
			counter(c.rulePackets, r.Packets, l...)
			counter(c.ruleBytes, r.Bytes, l...)
		}
	}
	for _, d := range last.Defaults {
		l := []string{string(d.Tier), strings.ToLower(string(d.Direction)), strings.ToLower(string(d.Action))}
		counter(c.defaultPackets, d.Packets, l...)
		counter(c.defaultBytes, d.Bytes, l...)
	}
	counter(c.unattrPackets, last.Unattributed.Packets)
	counter(c.unattrBytes, last.Unattributed.Bytes)
}

// refresh starts a read when none runs and the last one started at least
// Interval (or ten times the last read's duration) ago, and waits for the running read, if any, at most Wait.
func (c *CounterCollector) refresh() {
	c.mu.Lock()
	done := c.inFlight
	if done == nil && (c.readAt.IsZero() || c.cfg.Now().Sub(c.readAt) >= max(c.cfg.Interval, 10*c.took)) {
		done = make(chan struct{})
		c.inFlight = done
		c.readAt = c.cfg.Now()
		go c.read(done)
	}
	c.mu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(c.cfg.Wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func (c *CounterCollector) read(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ReadTimeout)
	defer cancel()
	start := c.cfg.Now()
	got, err := c.reader.Counters(ctx)
	took := c.cfg.Now().Sub(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight = nil
	c.took = took
	if err != nil {
		c.errors++
		return
	}
	c.last = &got
}
