package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

// BenchmarkDatapath measures, through the nftables backend with 1,000
// policies over 2,000 pods, the first-packet overhead and the connection
// rate against the same path on a lab node with no filter, interleaved
// (see pairedMeter), and what source validation adds on that path;
// netpolctl bench --datapath runs the full set of baselines and policy
// counts. Each iteration is one complete paired run.
func BenchmarkDatapath(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the datapath benchmark needs root: it creates network namespaces and an nftables table in them")
	}
	cfg := Default()
	cfg.Pods, cfg.Namespaces, cfg.Policies, cfg.Nodes = 2_000, 100, 1_000, 20
	cfg.Datapath, cfg.DatapathPolicies = true, []int{1_000}
	cfg.DatapathSamples, cfg.DatapathDuration = 2_000, 500*time.Millisecond
	ctx := context.Background()
	var overhead, paired, ratio, guard float64
	n := 0
	for b.Loop() {
		// A lab per run: runDatapath adds the bench pods to it.
		l, err := lab.New(ctx, lab.Config{Nodes: 2, Parallelism: cfg.DatapathParallel})
		if err != nil {
			b.Fatal(err)
		}
		fig, err := runDatapath(ctx, cfg, l, func(string, ...any) {})
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		r := fig.Runs[0]
		if !r.DeniedPortBlocked {
			b.Fatal("the policy does not block the denied port")
		}
		overhead += r.OverheadMedianMicros
		paired += r.PairedOverheadMedianMicros
		ratio += r.ConnsRatio
		guard += fig.SourceValidation.AddedMedianMicros
		b.Logf("source validation: off %v µs, on %v µs (paired overheads per round), conns ratio off %v on %v",
			fig.SourceValidation.OffPairedOverheadMicros, fig.SourceValidation.OnPairedOverheadMicros,
			fig.SourceValidation.OffConnsRatio, fig.SourceValidation.OnConnsRatio)
		n++
	}
	b.ReportMetric(overhead/float64(n), "overhead-µs")
	b.ReportMetric(paired/float64(n), "paired-overhead-µs")
	b.ReportMetric(ratio/float64(n), "conns-ratio")
	b.ReportMetric(guard/float64(n), "source-validation-added-µs")
}
