package conntrack_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// kernelBackends open each kernel backend in a namespace.
var kernelBackends = map[string]func(ns int) (backend.Backend, func(), error){
	"nftables": func(ns int) (backend.Backend, func(), error) {
		b, err := nftables.New(nftables.Config{NetNS: ns})
		if err != nil {
			return nil, nil, err
		}
		return b, func() { _ = b.Close() }, nil
	},
	"iptables": func(ns int) (backend.Backend, func(), error) {
		b, err := iptables.New(iptables.Config{NetNS: ns})
		if err != nil {
			return nil, nil, err
		}
		return b, func() { _ = b.Close() }, nil
	},
}

// unrelatedChanges is how many changes that deny nothing the test makes,
// checking every held connection after each (100 with -short).
func unrelatedChanges() int {
	if testing.Short() {
		return 100
	}
	return 1000
}

// Real connections through each kernel backend, IPv4 and IPv6: held TCP and
// UDP connections survive changes that still allow them (1,000 changes
// that re-evaluate them), and a label removal cuts exactly the ones it
// denies, while the node's own connection to the pod stays.
func TestFollowerCutsHeldConnections(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a lab of network namespaces and programs its packet filter")
	}
	for name, open := range kernelBackends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// A check that should echo returns at the echo; only the
			// connections meant to be cut wait this long. Generous, so a
			// loaded machine never passes for a cut connection.
			l, err := lab.New(ctx, lab.Config{ProbeTimeout: 2 * time.Second})
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
			for _, p := range []lab.PodSpec{
				{Name: "ns/db", IPs: []netip.Addr{irtest.Addr(db), irtest.Addr(db6)}},
				{Name: "ns/fe", IPs: []netip.Addr{irtest.Addr(fe), irtest.Addr(fe6)}},
				{Name: "ns/oth", IPs: []netip.Addr{irtest.Addr(oth), irtest.Addr(oth6)}},
			} {
				require.NoError(t, l.AddPod(ctx, p))
			}
			ns, err := l.NodeNS(0)
			require.NoError(t, err)
			inner, closeInner, err := open(int(ns))
			require.NoError(t, err)
			t.Cleanup(closeInner)
			m := &fakeMetrics{}
			f, err := conntrack.New(inner, conntrack.Config{NetNS: int(ns), Metrics: m})
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			_, err = f.Sync(ctx, cluster())
			require.NoError(t, err)

			var probes []lab.Probe
			for _, src := range []string{"ns/fe", "ns/oth"} {
				for _, dst := range []string{db, db6} {
					probes = append(probes,
						lab.Probe{Src: src, Dst: irtest.Addr(dst), Port: 6379, Protocol: lab.TCP},
						lab.Probe{Src: src, Dst: irtest.Addr(dst), Port: 53, Protocol: lab.UDP})
				}
			}
			// The node may always reach its pods, on any port.
			probes = append(probes, lab.Probe{Src: "node:0", Dst: irtest.Addr(db), Port: 8080, Protocol: lab.TCP})
			held, res := l.Hold(ctx, probes)
			for i, r := range res {
				require.NoError(t, r.Err)
				require.True(t, r.Connected, "hold %v: %s", probes[i], r.Detail)
			}
			fromOth := func(p lab.Probe) bool { return p.Src == "ns/oth" }
			checkAll := func(label string, cutOth bool) {
				t.Helper()
				bad := 0
				for i, r := range l.CheckHeld(ctx, held) {
					want := !(cutOth && fromOth(probes[i]))
					if !assert.Equal(t, want, r.Connected, "%s: held %v: %s", label, probes[i], r.Detail) {
						bad++
					}
				}
				if bad > 0 {
					t.Fatalf("%s: %d held connections wrong; cuts %v, follow errors %d", label, bad, m.cuts, m.errors)
				}
			}

			// Changes that deny nothing: an unrelated pod joins and leaves
			// the set db's policy uses, so every entry of db is judged again.
			gen := uint64(1)
			for i := range unrelatedChanges() {
				ch := ir.AddressSetChange{ID: "fe"}
				if i%2 == 0 {
					ch.Added = irtest.Prefixes("10.0.0.9/32")
				} else {
					ch.Removed = irtest.Prefixes("10.0.0.9/32")
				}
				require.NoError(t, f.Apply(ctx, &ir.Delta{Base: gen, Generation: gen + 1, AddressSetChanges: []ir.AddressSetChange{ch}}))
				gen++
				checkAll(fmt.Sprintf("unrelated change %d", i), false)
			}
			require.Empty(t, m.cuts, "no connection cut by changes that deny nothing")
			require.Zero(t, m.errors)

			// oth loses the label: its four connections are cut, nothing else.
			require.NoError(t, f.Apply(ctx, removeOth(gen)))
			checkAll("label removed", true)
			assert.Equal(t, []int{4}, m.cuts)
			assert.Zero(t, m.errors)

			// New connections agree.
			for i, r := range l.Probe(ctx, probes) {
				assert.Equal(t, !fromOth(probes[i]), r.Connected, "new %v: %s", probes[i], r.Detail)
			}
		})
	}
}

// A following Follower turns conntrack's TCP pickup off in its namespace
// (only a SYN starts a connection, so a cut one cannot revive); KeepTCPPickup
// and ModeKeep leave it alone.
func TestFollowerTurnsTCPPickupOff(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  conntrack.Config
		want string
	}{
		{"follow", conntrack.Config{}, "0"},
		{"keep pickup", conntrack.Config{KeepTCPPickup: true}, "1"},
		{"keep", conntrack.Config{Mode: conntrack.ModeKeep}, "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := backendtest.NewNetNS(t, "follows its conntrack table")
			c.cfg.NetNS = int(ns)
			f, err := conntrack.New(memory.New(memory.Config{}), c.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			assert.Equal(t, c.want, conntrack.TCPLooseForTest(t, int(ns)))
		})
	}
}
