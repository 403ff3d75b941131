package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// TestPacketTiers sends real traffic through a lab node programmed with
// every tier kind (Admin Allow/Deny/Pass over two lists, NetworkPolicy,
// Baseline), which the conformance suite's NetworkPolicy scenarios do not
// reach, and compares each flow with the memory backend, in both iptables
// variants.
func TestPacketTiers(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	newNetNS(t) // skips when not root
	forModes(t, func(t *testing.T, mode Mode) {
		ctx := context.Background()
		l, err := lab.New(ctx, lab.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		pods := map[string][]netip.Addr{
			"default/web":  {irtest.Addr("10.0.0.2"), irtest.Addr("fd00::2")},
			"default/free": {irtest.Addr("10.0.0.3")},
			"default/db":   {irtest.Addr("10.0.0.10"), irtest.Addr("fd00::10")},
			"default/mon":  {irtest.Addr("10.0.0.20"), irtest.Addr("fd00::20")},
		}
		for name, ips := range pods {
			require.NoError(t, l.AddPod(ctx, lab.PodSpec{Name: name, IPs: ips}))
		}

		snap := testSnapshot()
		db := &snap.RuleLists[4]
		db.Rules[0].Ports = append(db.Rules[0].Ports, irtest.Port(ir.TCP, 5433, 5433))
		snap.RuleLists[2].Rules = append(snap.RuleLists[2].Rules, irtest.Rule(1, ir.Deny, irtest.Peers("monitoring"), irtest.Ports(irtest.Port(ir.TCP, 80, 80))))
		snap.RuleLists = append(snap.RuleLists, irtest.List("np/default/web/egress", "NetworkPolicy", "default", "web", ir.Egress, irtest.Rule(0, ir.Allow, irtest.Ports(irtest.Port(ir.TCP, 5432, 5434), irtest.Port(ir.UDP, 0, 0)))))
		snap.Endpoints[2].Ingress = []ir.Tier{irtest.Tier(ir.TierAdmin, "anp/pass-front/ingress"), irtest.Tier(ir.TierBaseline, "banp/default/ingress")}
		snap.Endpoints[2].Egress = []ir.Tier{irtest.Tier(ir.TierNetworkPolicy, "np/default/web/egress")}
		snap.Sort()
		require.NoError(t, snap.Validate())

		ns, err := l.NodeNS(0)
		require.NoError(t, err)
		b, err := New(Config{NetNS: int(ns), Mode: mode})
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		mustSync(t, b, snap)
		mem := memory.New(memory.Config{NodeIPs: l.NodeIPs(0)})
		_, err = mem.Sync(ctx, snap)
		require.NoError(t, err)

		type flow struct {
			src   string
			srcIP netip.Addr
			dst   netip.Addr
			proto lab.Protocol
			port  uint16
		}
		var flows []flow
		checks := []struct {
			proto lab.Protocol
			port  uint16
		}{{lab.TCP, 80}, {lab.TCP, 5432}, {lab.TCP, 5433}, {lab.TCP, 5434}, {lab.TCP, 6005}, {lab.TCP, 8080}, {lab.TCP, 9090}, {lab.UDP, 53}, {lab.UDP, 9999}, {lab.SCTP, 7000}}
		nodeIPs := l.NodeIPs(0)
		for src, srcIPs := range pods {
			for _, sip := range srcIPs {
				dsts := []netip.Addr{}
				for dst, dstIPs := range pods {
					if dst == src {
						continue
					}
					for _, dip := range dstIPs {
						if dip.Is4() == sip.Is4() {
							dsts = append(dsts, dip)
						}
					}
				}
				for _, n := range nodeIPs {
					if n.Is4() == sip.Is4() {
						dsts = append(dsts, n)
						for _, c := range checks {
							flows = append(flows, flow{"node:0", n, sip, c.proto, c.port})
						}
					}
				}
				for _, d := range dsts {
					for _, c := range checks {
						flows = append(flows, flow{src, sip, d, c.proto, c.port})
					}
				}
			}
		}
		probes := make([]lab.Probe, len(flows))
		for i, f := range flows {
			probes[i] = lab.Probe{Src: f.src, Dst: f.dst, Port: f.port, Protocol: f.proto}
		}
		results := l.Probe(ctx, probes)
		// A missed answer where one is expected is probed once more.
		for i, r := range results {
			f := flows[i]
			proto, _ := ir.ParseProtocol(string(f.proto))
			v := mem.Evaluate(memory.Flow{Src: f.srcIP, Dst: f.dst, Protocol: proto, Port: f.port})
			if r.Err == nil && v.Allowed && !r.Connected {
				r = l.Probe(ctx, probes[i:i+1])[0]
			}
			require.NoError(t, r.Err)
			if r.Connected != v.Allowed {
				t.Errorf("%s (%s) -> %s %s/%d: kernel %v (%s), memory %v (egress %s; ingress %s)",
					f.src, f.srcIP, f.dst, f.proto, f.port, r.Connected, r.Detail, v.Allowed, v.Egress, v.Ingress)
			}
		}
		t.Log(fmt.Sprintf("%d flows", len(flows)))
	})
}
