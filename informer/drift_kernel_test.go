package informer

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
)

// driftRuns is how many flushes TestKernelDriftRepairTime makes per backend.
const driftRuns = 20

// TestKernelDriftRepairTime runs the controller over each kernel backend in
// a scratch namespace with the default drift check, removes everything the
// backend programmed from outside (a second backend instance on the same
// namespace runs Cleanup: the nftables table deleted; the iptables jumps,
// chains and ipsets removed), and measures the time from the removal to the
// end of the Sync that repaired it, driftRuns times (at random phases of
// the check: p99 of so few runs is their maximum). It logs p50/p99 beside
// the baseline, the periodic resync (ResyncPeriod, 5 minutes by default),
// which is all that repaired drift before. Each removal must be repaired,
// leaving nothing to repair, within a bound far below the baseline (30 s);
// the time itself is reported, not asserted. Repaired means: a Sync
// succeeded since the removal and Drift is empty (read every 2 ms).
func TestKernelDriftRepairTime(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) (be, intruder backend.Backend)
	}{
		{"nftables", func(t *testing.T) (backend.Backend, backend.Backend) {
			ns := backendtest.NewNetNS(t, "programs nftables")
			cfg := nftables.Config{TableName: "palisade-drift-test", NetNS: int(ns)}
			be, err := nftables.New(cfg)
			if err != nil {
				t.Skipf("nftables unavailable: %v", err)
			}
			intruder, err := nftables.New(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = be.Cleanup(bg); _ = be.Close(); _ = intruder.Close() })
			return be, intruder
		}},
		{"iptables", func(t *testing.T) (backend.Backend, backend.Backend) {
			ns := backendtest.NewNetNS(t, "programs iptables and ipsets")
			be, err := iptables.New(iptables.Config{NetNS: int(ns)})
			if err != nil {
				t.Skipf("iptables unavailable: %v", err)
			}
			intruder, err := iptables.New(iptables.Config{NetNS: int(ns)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = be.Cleanup(bg); _ = be.Close(); _ = intruder.Close() })
			return be, intruder
		}},
	}
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be, intruder := bc.open(t)
			client := fake.NewClientset(makeNamespace("prod", nil),
				makePod("prod", "db", ipDB, withLabels("role", "db")),
				makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
				makeDBPolicy("prod"))
			metrics := &fakeMetrics{}
			c, err := New(Config{Client: client, Engine: policy.New(policy.Config{}), Backend: be, Metrics: metrics,
				Logger: testr.NewWithOptions(t, testr.Options{Verbosity: 0})})
			require.NoError(t, err)
			e := &env{t: t, client: client, c: c}
			e.start()
			e.waitReady()
			verifier, ok := backend.As[backend.Verifier](be)
			require.True(t, ok)

			syncs := func() int {
				var n int
				metrics.do(func() { n = metrics.syncs })
				return n
			}
			// repaired: a Sync succeeded since the removal and the kernel
			// holds what was programmed. (A Sync that raced with the
			// removal may fail; the Sync that follows it repairs without
			// listing repairs, since the backend no longer knew its state.)
			repaired := func(before int) bool {
				if syncs() <= before {
					return false
				}
				drift, err := verifier.Drift(bg)
				return err == nil && len(drift) == 0
			}
			var took []time.Duration
			rng := rand.New(rand.NewPCG(8, 7))
			for i := range driftRuns {
				// Removals fall anywhere between two checks, as a real
				// one would (the previous repair ended right after one).
				time.Sleep(time.Duration(rng.Int64N(int64(DefaultDriftCheckInterval))))
				before := syncs()
				start := time.Now()
				require.NoError(t, intruder.Cleanup(bg), "run %d: remove what the backend programmed", i)
				require.Eventually(t, func() bool { return repaired(before) }, 30*time.Second, 2*time.Millisecond,
					"run %d: the removal is repaired", i)
				took = append(took, time.Since(start))
			}
			metrics.do(func() {
				assert.Zero(t, metrics.errors[ErrorDriftCheck], "no drift check failed")
				assert.Positive(t, metrics.repairs, "repairs are counted")
			})
			slices.Sort(took)
			p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
			t.Logf("%s: removal → repaired over %d runs, drift check every %v: p50 %v, p99 %v, max %v (baseline without the check: the periodic resync, %v)",
				bc.name, len(took), DefaultDriftCheckInterval, p(0.50).Round(time.Millisecond), p(0.99).Round(time.Millisecond),
				took[len(took)-1].Round(time.Millisecond), DefaultResyncPeriod)
		})
	}
}
