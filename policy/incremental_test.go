package policy_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// irCmpOpts compare IR values.
var irCmpOpts = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

// probeAddrs are every pod address the generator can make, plus two
// addresses no pod has.
var probeAddrs = func() []netip.Addr {
	var out []netip.Addr
	for i := range 8 {
		out = append(out, netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i)), netip.MustParseAddr(fmt.Sprintf("fd00::%d", i)))
	}
	return append(out, netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("fd00::9"))
}()

// checkRun applies the events one by one to an engine, folding every Delta
// into a snapshot, and checks after each batch that:
//   - the folded deltas equal a full compile of the same state from scratch;
//   - the memory backend fed the deltas and one synced with the full
//     snapshot decide every flow the same way;
//   - both agree with the reference evaluator.
func checkRun(t *testing.T, c *chooser, events int) {
	t.Helper()
	ctx := context.Background()
	cl := newCluster()
	eng := policy.New(policy.Config{})
	folded := &ir.Snapshot{}
	incr := memory.New(memory.Config{})
	var log []string
	for i := 0; i < events; i++ {
		ev := genEvent(c)
		log = append(log, ev.desc)
		ev.apply(cl, eng)
		if c.chance(25) {
			_ = eng.Snapshot() // a reader looking in: it must not disturb the deltas
		}
		if !c.chance(40) && i != events-1 {
			continue // let changes pile up between deltas
		}
		if c.chance(10) {
			// A full sync in the middle of the stream: the deltas go on
			// from the checkpoint.
			folded = eng.Checkpoint()
			_, err := incr.Sync(ctx, folded.Clone())
			require.NoError(t, err)
		} else {
			d := eng.Delta()
			if err := folded.Apply(d); err != nil {
				t.Fatalf("after %s: delta does not apply: %v\nevents:\n%s", ev.desc, err, strings.Join(log, "\n"))
			}
			require.NoError(t, incr.Apply(ctx, d))
		}
		// The sum of the deltas is the snapshot, generation included.
		if snap := eng.Snapshot(); reflect.DeepEqual(snap, folded) {
			// equal: the fast path
		} else if diff := cmp.Diff(snap, folded, irCmpOpts...); diff != "" {
			t.Fatalf("after %s: folded deltas differ from the engine's snapshot (-snapshot +folded):\n%s\nevents:\n%s", ev.desc, diff, strings.Join(log, "\n"))
		}

		fresh := policy.New(policy.Config{})
		cl.load(fresh)
		full := fresh.Snapshot()
		if diff := cmp.Diff(full, folded, append(irCmpOpts, cmpopts.IgnoreFields(ir.Snapshot{}, "Generation"))...); diff != "" {
			t.Fatalf("after %s: incremental state differs from a full compile (-full +incremental):\n%s\nevents:\n%s", ev.desc, diff, strings.Join(log, "\n"))
		}
		fullMem := memory.New(memory.Config{})
		_, err := fullMem.Sync(ctx, full)
		require.NoError(t, err)
		ref := reference{cl: cl, sels: map[*metav1.LabelSelector]compiledSelector{}}
		ref.pols = ref.clusterPolicies()
		// Shared addresses: the same as the reference's, with the same owner.
		shared := map[netip.Addr]string{}
		for _, sa := range eng.SharedAddresses() {
			shared[sa.Address] = sa.Owner
		}
		for _, ip := range probeAddrs {
			claimants := 0
			for _, p := range cl.pods {
				if podActive(p) && slices.Contains(podAddrs(p), ip) {
					claimants++
				}
			}
			owner, ok := shared[ip]
			if (claimants > 1) != ok {
				t.Fatalf("after %s: %s has %d claimants, engine lists it as shared: %v\nevents:\n%s", ev.desc, ip, claimants, ok, strings.Join(log, "\n"))
			}
			if o := ref.owner(ip); ok && o.Namespace+"/"+o.Name != owner {
				t.Fatalf("after %s: %s: engine says %s owns it, reference %s/%s\nevents:\n%s", ev.desc, ip, owner, o.Namespace, o.Name, strings.Join(log, "\n"))
			}
		}
		for _, src := range probeAddrs {
			for _, dst := range probeAddrs {
				if src.Is4() != dst.Is4() {
					continue
				}
				for _, proto := range ir.Protocols {
					for _, port := range []uint16{80, 81, 82} {
						f := memory.Flow{Src: src, Dst: dst, Protocol: proto, Port: port}
						vi, vf := incr.Evaluate(f), fullMem.Evaluate(f)
						if vi.Allowed != vf.Allowed {
							t.Fatalf("after %s: %s: incremental %v, full %v\nevents:\n%s", ev.desc, f, vi.Allowed, vf.Allowed, strings.Join(log, "\n"))
						}
						if want := ref.allowed(src, dst, proto, port); want != vi.Allowed {
							t.Fatalf("after %s: %s: engine says %v (egress %s; ingress %s), reference says %v\nevents:\n%s\nstate:\n%s",
								ev.desc, f, vi.Allowed, vi.Egress, vi.Ingress, want, strings.Join(log, "\n"), incr.Dump())
						}
					}
				}
			}
		}
	}
}

func TestIncrementalEqualsFullAndReference(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 40
	}
	for seed := range runs {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkRun(t, &chooser{seed: uint64(seed) * 7919}, 40)
		})
	}
}

// FuzzIncremental drives random event sequences from the fuzz input: the
// state reached through deltas must equal a full compile, and both must
// decide every flow as the reference does.
func FuzzIncremental(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 3, 4, 6, 6, 6, 7, 0, 1, 5})
	f.Add([]byte("network policy engines must agree with themselves"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRun(t, &chooser{data: data, seed: uint64(len(data))}, 30)
	})
}
