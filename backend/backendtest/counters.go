package backendtest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/policy/ir"
)

// Origins of the rule lists RunCounters programs.
var (
	CountersAllowOrigin  = ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "allow-client"}
	CountersEgressOrigin = ir.Origin{Kind: "NetworkPolicy", Namespace: "shop", Name: "client-egress"}
	CountersAdminOrigin  = ir.Origin{Kind: "AdminNetworkPolicy", Name: "guard"}
)

// Ports RunCounters sends to.
const (
	countersDNS  = 5353 // UDP: allowed from client, passed by the admin tier from other
	countersDeny = 9999 // UDP: denied by the admin tier
	countersWeb  = 80   // TCP: allowed from client
	countersOut  = 7000 // UDP: not allowed by client's egress list
	countersPay  = 100  // payload of each datagram
)

// CountersSnapshot is what RunCounters programs: pods shop/client,
// shop/server and shop/other (dual-stack); server's ingress is an Admin
// tier (list "anp:guard:ingress": rule 0 "deny-9999" denies UDP 9999 from
// anyone, rule 1 "pass-other" passes UDP 5353 from other) and a
// NetworkPolicy tier (list "np:shop/allow-client:ingress": rule 0 allows
// UDP 5353 and TCP 80 from client); client's egress is a NetworkPolicy tier
// allowing UDP 5353 and TCP 80 to server (and UDP 9999, so that the admin
// tier is what denies it).
func CountersSnapshot() (*ir.Snapshot, map[string][]netip.Addr) {
	ips := map[string][]netip.Addr{
		"shop/client": {netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")},
		"shop/other":  {netip.MustParseAddr("10.77.0.3"), netip.MustParseAddr("fd77::3")},
		"shop/server": {netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("fd77::2")},
	}
	hosts := func(pod string) []netip.Prefix {
		var out []netip.Prefix
		for _, a := range ips[pod] {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
		return out
	}
	web := []ir.PortMatch{{Protocol: ir.UDP, Port: countersDNS, EndPort: countersDNS}, {Protocol: ir.TCP, Port: countersWeb, EndPort: countersWeb}}
	snap := &ir.Snapshot{
		Generation: 1,
		AddressSets: []ir.AddressSet{
			{ID: "client", Description: "shop/client", Hosts: true, Members: hosts("shop/client")},
			{ID: "other", Description: "shop/other", Hosts: true, Members: hosts("shop/other")},
			{ID: "server", Description: "shop/server", Hosts: true, Members: hosts("shop/server")},
		},
		RuleLists: []ir.RuleList{
			{ID: "anp:guard:ingress", Origin: CountersAdminOrigin, Direction: ir.Ingress, Priority: 10, Rules: []ir.Rule{
				{Index: 0, Name: "deny-9999", Action: ir.Deny, AllPeers: true, Ports: []ir.PortMatch{{Protocol: ir.UDP, Port: countersDeny, EndPort: countersDeny}}},
				{Index: 1, Name: "pass-other", Action: ir.Pass, Peers: []string{"other"}, Ports: []ir.PortMatch{{Protocol: ir.UDP, Port: countersDNS, EndPort: countersDNS}}},
			}},
			{ID: "np:shop/allow-client:ingress", Origin: CountersAllowOrigin, Direction: ir.Ingress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{"client"}, Ports: web},
			}},
			{ID: "np:shop/client-egress:egress", Origin: CountersEgressOrigin, Direction: ir.Egress, Rules: []ir.Rule{
				{Index: 0, Action: ir.Allow, Peers: []string{"server"}, Ports: append(web, ir.PortMatch{Protocol: ir.UDP, Port: countersDeny, EndPort: countersDeny})},
			}},
		},
		Endpoints: []ir.Endpoint{
			{ID: "shop/client", IPs: ips["shop/client"], Egress: []ir.Tier{{Kind: ir.TierNetworkPolicy, RuleLists: []string{"np:shop/client-egress:egress"}}}},
			{ID: "shop/other", IPs: ips["shop/other"]},
			{ID: "shop/server", IPs: ips["shop/server"], Ingress: []ir.Tier{
				{Kind: ir.TierAdmin, RuleLists: []string{"anp:guard:ingress"}},
				{Kind: ir.TierNetworkPolicy, RuleLists: []string{"np:shop/allow-client:ingress"}},
			}},
		},
	}
	return snap, ips
}

// RunCounters checks a backend's CounterReader against real traffic: it
// programs CountersSnapshot into a one-node lab, sends a known number of
// UDP datagrams (each from a socket of its own, so each is a new
// connection) of both families, and TCP probes, and checks that each
// rule's counter and the isolated defaults hold exactly the datagrams
// (packets and bytes: IP header, UDP header, payload) and at least the
// SYNs the rule decided. It needs root; without it the test skips.
func RunCounters(t *testing.T, newBackend Factory) {
	if os.Geteuid() != 0 {
		t.Skip("RunCounters needs root: it creates network namespaces and programs packet filters in them")
	}
	ctx := context.Background()
	l, err := lab.New(ctx, lab.Config{ProbeTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	snap, ips := CountersSnapshot()
	for _, name := range []string{"shop/client", "shop/other", "shop/server"} {
		if err := l.AddPod(ctx, lab.PodSpec{Name: name, IPs: ips[name]}); err != nil {
			t.Fatalf("lab pod %s: %v", name, err)
		}
	}
	ns, err := l.NodeNS(0)
	if err != nil {
		t.Fatal(err)
	}
	be, err := newBackend(t, 0, ns)
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	t.Cleanup(func() { _ = be.Cleanup(context.WithoutCancel(ctx)) })
	cr, ok := backend.As[backend.CounterReader](be)
	if !ok {
		t.Fatalf("%T does not implement backend.CounterReader", be)
	}
	if c, err := cr.Counters(ctx); err != nil || len(c.Rules) != 0 || len(c.Defaults) != 0 {
		t.Fatalf("Counters before the first Sync = %+v, %v; want empty, nil", c, err)
	}
	if _, err := be.Sync(ctx, snap); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	before, err := cr.Counters(ctx)
	if err != nil {
		t.Fatalf("Counters: %v", err)
	}
	if len(before.Rules) != 4 {
		t.Fatalf("Counters after Sync: %d rules, want 4 (every rule of every list): %+v", len(before.Rules), before.Rules)
	}
	for _, r := range before.Rules {
		if r.Packets != 0 || r.Bytes != 0 || r.List == "" || r.Tier == "" {
			t.Errorf("fresh rule counter %+v: want zero counts, a list ID and a tier", r)
		}
	}

	// Datagrams per family: v4 count, v6 count.
	sends := []struct {
		src, dst string
		port     uint16
		n        [2]int
	}{
		{"shop/client", "shop/server", countersDNS, [2]int{3, 2}},  // allowed by allow-client rule 0
		{"shop/client", "shop/server", countersDeny, [2]int{2, 1}}, // denied by guard rule 0
		{"shop/other", "shop/server", countersDNS, [2]int{1, 2}},   // passed by guard rule 1, then isolated
		{"shop/client", "shop/other", countersOut, [2]int{2, 2}},   // isolated on client's egress
	}
	for _, s := range sends {
		for f, n := range s.n {
			sendDatagrams(t, l, s.src, ips[s.dst][f], s.port, n)
		}
	}
	// TCP: client → server:80 allowed (its SYN), other → server:80 isolated.
	res := l.Probe(ctx, []lab.Probe{
		{Src: "shop/client", Dst: ips["shop/server"][0], Port: countersWeb, Protocol: lab.TCP},
		{Src: "shop/other", Dst: ips["shop/server"][1], Port: countersWeb, Protocol: lab.TCP},
	})
	if res[0].Err != nil || !res[0].Connected || res[1].Err != nil || res[1].Connected {
		t.Fatalf("TCP probes: %+v; want the first connected, the second not", res)
	}

	// Packets cross the veths asynchronously: read until the counts are
	// all there (they never exceed what was sent), for at most 5 s.
	var got backend.Counters
	var problems []string
	for range 50 {
		if got, err = cr.Counters(ctx); err != nil {
			t.Fatalf("Counters: %v", err)
		}
		if problems = countersProblems(got, sends[0].n, sends[1].n, sends[2].n, sends[3].n); len(problems) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("counters read: %+v", got)
	}

	// A list that goes is dropped from the counters.
	next := snap.Clone()
	next.Generation = 2
	next.RuleLists = next.RuleLists[1:]
	next.Endpoints[2].Ingress = next.Endpoints[2].Ingress[1:]
	if _, err := be.Sync(ctx, next); err != nil {
		t.Fatalf("Sync without the admin list: %v", err)
	}
	if got, err = cr.Counters(ctx); err != nil {
		t.Fatalf("Counters: %v", err)
	}
	for _, r := range got.Rules {
		if r.Origin == CountersAdminOrigin {
			t.Errorf("counter of a removed list: %+v", r)
		}
	}
	if _, ok := got.Rule(CountersAllowOrigin, ir.Ingress, 0, ir.Allow); !ok {
		t.Errorf("allow-client's counter is gone after an unrelated list was removed: %+v", got.Rules)
	}
}

// countersProblems lists what differs from the counts RunCounters expects
// after sending allowed, denied, passed and egressDenied datagrams (v4, v6)
// and the two TCP probes.
func countersProblems(got backend.Counters, allowed, denied, passed, egressDenied [2]int) []string {
	var out []string
	bytesOf := func(n [2]int) uint64 {
		return uint64(n[0]*(20+8+countersPay) + n[1]*(40+8+countersPay))
	}
	check := func(what string, c backend.Count, n [2]int, syns uint64) {
		want := uint64(n[0] + n[1])
		if syns == 0 && (c.Packets != want || c.Bytes != bytesOf(n)) {
			out = append(out, fmt.Sprintf("%s: %d packets, %d bytes; want %d packets, %d bytes", what, c.Packets, c.Bytes, want, bytesOf(n)))
		}
		if syns > 0 && (c.Packets < want+syns || c.Bytes <= bytesOf(n)) {
			out = append(out, fmt.Sprintf("%s: %d packets, %d bytes; want at least %d packets and more than %d bytes (the datagrams and a TCP SYN)", what, c.Packets, c.Bytes, want+syns, bytesOf(n)))
		}
	}
	rule := func(o ir.Origin, dir ir.Direction, idx int, a ir.Action) backend.Count {
		r, ok := got.Rule(o, dir, idx, a)
		if !ok {
			out = append(out, fmt.Sprintf("no counter for %s %s rule %d %s", o, dir, idx, a))
		}
		return r.Count
	}
	check("allow-client ingress rule 0 (allow)", rule(CountersAllowOrigin, ir.Ingress, 0, ir.Allow), allowed, 1)
	check("guard ingress rule 0 (deny)", rule(CountersAdminOrigin, ir.Ingress, 0, ir.Deny), denied, 0)
	check("guard ingress rule 1 (pass)", rule(CountersAdminOrigin, ir.Ingress, 1, ir.Pass), passed, 0)
	check("isolated ingress default", got.Default(ir.TierNetworkPolicy, ir.Ingress), passed, 1)
	check("isolated egress default", got.Default(ir.TierNetworkPolicy, ir.Egress), egressDenied, 0)
	// client's egress list allowed what then reached server's ingress check.
	check("client-egress egress rule 0 (allow)", rule(CountersEgressOrigin, ir.Egress, 0, ir.Allow),
		[2]int{allowed[0] + denied[0], allowed[1] + denied[1]}, 1)
	for _, r := range got.Rules {
		switch {
		case r.Origin == CountersAdminOrigin && (r.Tier != ir.TierAdmin || r.List != "anp:guard:ingress" || r.Name == ""):
			out = append(out, fmt.Sprintf("rule %+v: want tier Admin, list anp:guard:ingress and a name", r))
		case r.Origin != CountersAdminOrigin && r.Tier != ir.TierNetworkPolicy:
			out = append(out, fmt.Sprintf("rule %+v: want tier NetworkPolicy", r))
		}
	}
	if got.Unattributed != (backend.Count{}) {
		out = append(out, fmt.Sprintf("Unattributed = %+v, want zero", got.Unattributed))
	}
	if per := got.PerPolicy(); len(per) != 4 { // guard deny, guard pass, allow-client allow, client-egress allow
		out = append(out, fmt.Sprintf("PerPolicy: %d entries, want 4: %+v", len(per), per))
	}
	return out
}

// sendDatagrams sends n UDP datagrams of countersPay bytes from pod src to
// dst:port, each from a new socket (a new connection for conntrack).
func sendDatagrams(t *testing.T, l *lab.Lab, src string, dst netip.Addr, port uint16, n int) {
	t.Helper()
	if n == 0 {
		return
	}
	var domain int
	var sa unix.Sockaddr
	if dst.Is4() {
		domain, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(port), Addr: dst.As4()}
	} else {
		domain, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(port), Addr: dst.As16()}
	}
	fds, err := l.Sockets(src, n, domain, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, countersPay)
	for _, fd := range fds {
		if err := unix.Sendto(fd, payload, 0, sa); err != nil {
			t.Errorf("send from %s to %s: %v", src, netip.AddrPortFrom(dst, port), err)
		}
		unix.Close(fd)
	}
}
