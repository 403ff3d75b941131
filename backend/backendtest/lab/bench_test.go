package lab

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkProbeTCP measures TCP probe throughput with no packet filter:
// batches of 500 pod→pod probes at the default parallelism.
func BenchmarkProbeTCP(b *testing.B) {
	l := newLab(b, Config{})
	addPod(b, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(b, l, "x/b", 0, "10.244.0.11", "fd00::11")
	ps := make([]Probe, 500)
	for i := range ps {
		ps[i] = Probe{Src: "x/a", Dst: ip("10.244.0.11"), Port: 80, Protocol: TCP}
	}
	ctx := context.Background()
	l.Probe(ctx, ps[:1]) // serve and warm up
	n := 0
	for b.Loop() {
		for _, r := range l.Probe(ctx, ps) {
			if !r.Connected {
				b.Fatalf("%s: %v %s", describe(r.Probe), r.Err, r.Detail)
			}
		}
		n += len(ps)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "probes/s")
}

// BenchmarkTCPConnectLatency measures Result.Latency (connect() to
// completed handshake) one probe at a time, reporting its median.
func BenchmarkTCPConnectLatency(b *testing.B) {
	l := newLab(b, Config{Parallelism: 1})
	addPod(b, l, "x/a", 0, "10.244.0.10", "fd00::10")
	addPod(b, l, "x/b", 0, "10.244.0.11", "fd00::11")
	p := []Probe{{Src: "x/a", Dst: ip("10.244.0.11"), Port: 80, Protocol: TCP}}
	ctx := context.Background()
	l.Probe(ctx, p)
	var lat []time.Duration
	for b.Loop() {
		r := l.Probe(ctx, p)[0]
		if !r.Connected {
			b.Fatalf("%v %s", r.Err, r.Detail)
		}
		lat = append(lat, r.Latency)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
