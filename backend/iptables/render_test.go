package iptables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

func goldenSnapshot() *ir.Snapshot {
	return &ir.Snapshot{Generation: 1,
		AddressSets: []ir.AddressSet{irtest.AddrSet("front", "10.0.0.2/32", "fd00::2/128", "192.168.0.0/16")},
		PortSets:    []ir.PortSet{{ID: "http", Protocol: ir.TCP, PortName: "http", Members: []netip.AddrPort{irtest.AddrPort("10.0.0.1:8080")}}},
		RuleLists: []ir.RuleList{irtest.List("np-db-in", "NetworkPolicy", "default", "db", ir.Ingress,
			irtest.Rule(0, ir.Allow, irtest.Peers("front"), irtest.Ports(irtest.Port(ir.TCP, 5432, 5432), irtest.Port(ir.SCTP, 7000, 7010))),
			irtest.Rule(1, ir.Allow, irtest.Ports(irtest.Named(ir.TCP, "http"))))},
		Endpoints: []ir.Endpoint{irtest.Endpoint("default/db", []string{"10.0.0.1"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-db-in")))},
	}
}

func newFakeBackend(t *testing.T) (*Backend, *fakeRunner) {
	f := &fakeRunner{}
	b, err := New(Config{Runner: f})
	require.NoError(t, err)
	return b, f
}

func commands(cs []call) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

// TestSyncGolden checks the restore input of a first Sync on an empty
// kernel: sets first, then one transaction per family that declares and
// fills our chains and inserts the two entry rules last.
func TestSyncGolden(t *testing.T) {
	b, f := newFakeBackend(t)
	rep, err := b.Sync(context.Background(), goldenSnapshot())
	require.NoError(t, err)
	assert.Positive(t, rep.Changes)
	w := f.writes()
	require.Equal(t, []string{"ipset restore -exist", "iptables-nft-restore -w 5 --noflush", "ip6tables-nft-restore -w 5 --noflush"}, commands(w))
	wantSets := `create pal-a4-front hash:net family inet maxelem 1048576
add pal-a4-front 10.0.0.2
add pal-a4-front 192.168.0.0/16
create pal-a6-front hash:net family inet6 maxelem 1048576
add pal-a6-front fd00::2
create pal-d4-1c09ad059942 hash:ip family inet maxelem 1048576
add pal-d4-1c09ad059942 10.0.0.1
create pal-d6-1c09ad059942 hash:ip family inet6 maxelem 1048576
create pal-n4-http hash:ip,port family inet maxelem 1048576
add pal-n4-http 10.0.0.1,tcp:8080
create pal-n6-http hash:ip,port family inet6 maxelem 1048576
`
	if diff := cmp.Diff(wantSets, w[0].stdin); diff != "" {
		t.Errorf("ipset restore input (-want +got):\n%s", diff)
	}
	want4 := `*filter
:PALISADE-ALLOW - [0:0]
:PALISADE-EGRESS - [0:0]
:PALISADE-FWD - [0:0]
:PALISADE-INGRESS - [0:0]
:PALISADE-INPUT - [0:0]
:PALISADE-L318f08c16a99 - [0:0]
:PALISADE-P1c09ad059942 - [0:0]
:PALISADE-PASS - [0:0]
-A PALISADE-ALLOW -m comment --comment "palisade: allowed for this direction" -j MARK --set-xmark 0x1000000/0x1000000
-A PALISADE-FWD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "palisade: established and related connections" -j RETURN
-A PALISADE-FWD -m comment --comment "palisade: egress policy of the source endpoint" -j PALISADE-EGRESS
-A PALISADE-FWD -m comment --comment "palisade: ingress policy of the destination endpoint" -j PALISADE-INGRESS
-A PALISADE-FWD -m mark ! --mark 0x0/0x3000000 -m comment --comment "palisade: clear the check marks" -j MARK --set-xmark 0x0/0x3000000
-A PALISADE-INGRESS -m set --match-set pal-d4-1c09ad059942 dst -m comment --comment "endpoints of profile PALISADE-P1c09ad059942" -g PALISADE-P1c09ad059942
-A PALISADE-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "palisade: established and related connections" -j RETURN
-A PALISADE-INPUT -m comment --comment "palisade: egress policy of the source endpoint" -j PALISADE-EGRESS
-A PALISADE-INPUT -m mark ! --mark 0x0/0x3000000 -m comment --comment "palisade: clear the check marks" -j MARK --set-xmark 0x0/0x3000000
-A PALISADE-L318f08c16a99 -p tcp -m set --match-set pal-a4-front src -m tcp --dport 5432 -m comment --comment "NetworkPolicy default/db ingress rule 0: allow" -g PALISADE-ALLOW
-A PALISADE-L318f08c16a99 -p sctp -m set --match-set pal-a4-front src -m sctp --dport 7000:7010 -m comment --comment "NetworkPolicy default/db ingress rule 0: allow" -g PALISADE-ALLOW
-A PALISADE-L318f08c16a99 -p tcp -m set --match-set pal-n4-http dst,dst -m comment --comment "NetworkPolicy default/db ingress rule 1: allow" -g PALISADE-ALLOW
-A PALISADE-P1c09ad059942 -m conntrack --ctstate INVALID -m comment --comment "invalid packets" -j DROP
-A PALISADE-P1c09ad059942 -m comment --comment "start of the ingress check" -j MARK --set-xmark 0x0/0x3000000
-A PALISADE-P1c09ad059942 -m comment --comment "NetworkPolicy tier: list np-db-in" -j PALISADE-L318f08c16a99
-A PALISADE-P1c09ad059942 -m mark --mark 0x1000000/0x1000000 -m comment --comment allowed -j RETURN
-A PALISADE-P1c09ad059942 -m comment --comment "NetworkPolicy tier: no rule matched, isolated" -j DROP
-A PALISADE-PASS -m comment --comment "palisade: pass to the next tier" -j MARK --set-xmark 0x2000000/0x2000000
-I FORWARD 1 -m comment --comment "palisade: network policy of local endpoints" -j PALISADE-FWD
-I INPUT 1 -m comment --comment "palisade: egress policy of local endpoints to this node" -j PALISADE-INPUT
COMMIT
`
	if diff := cmp.Diff(want4, w[1].stdin); diff != "" {
		t.Errorf("iptables-restore input (-want +got):\n%s", diff)
	}
	assert.Contains(t, w[2].stdin, "-A PALISADE-L318f08c16a99 -p tcp -m set --match-set pal-a6-front src -m tcp --dport 5432")
	assert.Contains(t, w[2].stdin, "--icmpv6-type 135")
}

// TestApplyGolden checks that a label change is one ipset batch, and that a
// new profile creates its set before the chains and jump that use it.
func TestApplyGolden(t *testing.T) {
	ctx := context.Background()
	b, f := newFakeBackend(t)
	_, err := b.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)

	f.calls = nil
	require.NoError(t, b.Apply(ctx, &ir.Delta{Base: 1, Generation: 2,
		AddressSetChanges: []ir.AddressSetChange{{ID: "front", Added: []netip.Prefix{irtest.Prefix("10.0.0.3/32")}, Removed: []netip.Prefix{irtest.Prefix("10.0.0.2/32")}}}}))
	require.Len(t, f.calls, 1)
	if diff := cmp.Diff("add pal-a4-front 10.0.0.3\ndel pal-a4-front 10.0.0.2\n", f.calls[0].stdin); diff != "" {
		t.Errorf("label change (-want +got):\n%s", diff)
	}

	f.calls = nil
	require.NoError(t, b.Apply(ctx, &ir.Delta{Base: 2, Generation: 3,
		Endpoints: []ir.Endpoint{irtest.Endpoint("default/db2", []string{"10.0.0.7", "fd00::7"}, irtest.Ingress(irtest.Tier(ir.TierNetworkPolicy, "np-db-in")))}}))
	require.Len(t, f.calls, 1, "a pod with an existing profile is two set elements")
	if diff := cmp.Diff("add pal-d4-1c09ad059942 10.0.0.7\nadd pal-d6-1c09ad059942 fd00::7\n", f.calls[0].stdin); diff != "" {
		t.Errorf("new endpoint (-want +got):\n%s", diff)
	}

	f.calls = nil
	require.NoError(t, b.Apply(ctx, &ir.Delta{Base: 3, Generation: 4,
		Endpoints: []ir.Endpoint{irtest.Endpoint("default/db2", []string{"10.0.0.7", "fd00::7"}, irtest.Egress(irtest.Tier(ir.TierNetworkPolicy)))}}))
	got := commands(f.calls)
	require.Equal(t, []string{"ipset restore -exist", "iptables-nft-restore -w 5 --noflush", "ip6tables-nft-restore -w 5 --noflush", "ipset restore -exist"}, got)
	egressProfile := b.n.profileChain(ir.ProfileKey(ir.Egress, []ir.Tier{irtest.Tier(ir.TierNetworkPolicy)}))
	egressSet := b.n.dispatchSet(ir.IPv4, ir.ProfileKey(ir.Egress, []ir.Tier{irtest.Tier(ir.TierNetworkPolicy)}))
	assert.Contains(t, f.calls[0].stdin, "create "+egressSet+" hash:ip family inet")
	assert.Contains(t, f.calls[0].stdin, "add "+egressSet+" 10.0.0.7")
	want := `*filter
:PALISADE-EGRESS - [0:0]
:` + egressProfile + ` - [0:0]
-A PALISADE-EGRESS -m set --match-set ` + egressSet + ` src -m comment --comment "endpoints of profile ` + egressProfile + `" -g ` + egressProfile + `
-A ` + egressProfile + ` -m conntrack --ctstate INVALID -m comment --comment "invalid packets" -j DROP
-A ` + egressProfile + ` -m comment --comment "start of the egress check" -j MARK --set-xmark 0x0/0x3000000
-A ` + egressProfile + ` -m comment --comment "NetworkPolicy tier: no rule matched, isolated" -j DROP
COMMIT
`
	if diff := cmp.Diff(want, f.calls[1].stdin); diff != "" {
		t.Errorf("new profile (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("del pal-d4-1c09ad059942 10.0.0.7\ndel pal-d6-1c09ad059942 fd00::7\n", f.calls[3].stdin); diff != "" {
		t.Errorf("old memberships go last (-want +got):\n%s", diff)
	}
}

// TestSyncReadsBack checks that Sync compares with what the kernel holds:
// a kernel already equal to the snapshot gets no command at all.
func TestSyncReadsBack(t *testing.T) {
	ctx := context.Background()
	b, f := newFakeBackend(t)
	_, err := b.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	// Make the fake kernel hold what was written.
	var sets strings.Builder
	for _, c := range f.writes() {
		if c.name == "ipset" {
			sets.WriteString(c.stdin)
		}
	}
	f.output = map[string]string{
		"ipset":              sets.String(),
		"iptables-nft-save":  saveOf(f.writes()[1].stdin),
		"ip6tables-nft-save": saveOf(f.writes()[2].stdin),
	}
	f.calls = nil
	b2, err := New(Config{Runner: f})
	require.NoError(t, err)
	_, err = b2.Drift(ctx)
	assert.ErrorIs(t, err, backend.ErrNotSynced, "nothing to compare with before the first Sync")
	changed, err := b2.Changed(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "nothing to watch before the first Sync")
	rep, err := b2.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	assert.Zero(t, rep.Changes)
	assert.Empty(t, f.writes())
	changed, err = b2.Changed(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "the kernel holds what was programmed")

	// Drift: a member gone and a rule gone.
	f.output["ipset"] = strings.Replace(f.output["ipset"], "add pal-a4-front 10.0.0.2\n", "", 1)
	f.output["iptables-nft-save"] = strings.Replace(f.output["iptables-nft-save"], "-A PALISADE-FWD -m conntrack", "-A XX -m conntrack", 1)
	f.calls = nil
	installed, err := b2.Installed(ctx)
	require.NoError(t, err)
	assert.True(t, installed)
	drift, err := b2.Drift(ctx)
	require.NoError(t, err)
	changed, err = b2.Changed(ctx)
	require.NoError(t, err)
	assert.True(t, changed, "a rule gone")
	assert.Empty(t, f.writes(), "Installed, Drift and Changed only read")
	rep, err = b2.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Changes)
	assert.Equal(t, []string{"IPv4 chain PALISADE-FWD: rules differ (3 rules, want 4)", "set pal-a4-front: member 10.0.0.2 missing"}, rep.Repairs)
	assert.Equal(t, rep.Repairs, drift, "Drift lists what Sync repairs")
	require.Len(t, f.writes(), 2)
	assert.Equal(t, "add pal-a4-front 10.0.0.2\n", f.writes()[0].stdin)
	assert.Contains(t, f.writes()[1].stdin, ":PALISADE-FWD - [0:0]\n-A PALISADE-FWD -m conntrack")
}

// TestSyncPutsOurJumpFirst: a rule another component inserted before our
// jump in FORWARD is reported, and our jump moves back to first place in
// the same restore transaction (delete, then insert at 1); the other rule
// is left alone.
func TestSyncPutsOurJumpFirst(t *testing.T) {
	ctx := context.Background()
	b, f := newFakeBackend(t)
	_, err := b.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	var sets strings.Builder
	for _, c := range f.writes() {
		if c.name == "ipset" {
			sets.WriteString(c.stdin)
		}
	}
	v4 := saveOf(f.writes()[1].stdin)
	jump := ""
	for _, l := range strings.Split(v4, "\n") {
		if strings.HasPrefix(l, "-A FORWARD ") {
			jump = strings.TrimPrefix(l, "-A FORWARD ")
		}
	}
	require.NotEmpty(t, jump)
	f.output = map[string]string{
		"ipset":              sets.String(),
		"iptables-nft-save":  strings.Replace(v4, "-A FORWARD ", "-A FORWARD -i cni0 -j ACCEPT\n-A FORWARD ", 1),
		"ip6tables-nft-save": saveOf(f.writes()[2].stdin),
	}
	f.calls = nil
	changed, err := b.Changed(ctx)
	require.NoError(t, err)
	assert.True(t, changed, "a rule before our jump is a change to watch")
	rep, err := b.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Changes)
	assert.Equal(t, []string{"IPv4 chain FORWARD: 1 rules of others before the rule entering PALISADE, which must be first"}, rep.Repairs)
	require.Len(t, f.writes(), 1)
	assert.Equal(t, "*filter\n-D FORWARD "+jump+"\n-I FORWARD 1 "+jump+"\nCOMMIT\n", f.writes()[0].stdin)
}

// TestErrorsByExitCode checks that a failing command surfaces as an error
// carrying its exit code, and that Apply then refuses until a Sync.
func TestErrorsByExitCode(t *testing.T) {
	ctx := context.Background()
	b, f := newFakeBackend(t)
	_, err := b.Sync(ctx, goldenSnapshot())
	require.NoError(t, err)
	f.fail = map[string]int{"ipset": 2}
	err = b.Apply(ctx, &ir.Delta{Base: 1, Generation: 2, AddressSetChanges: []ir.AddressSetChange{{ID: "front", Added: []netip.Prefix{irtest.Prefix("10.0.0.9/32")}}}})
	require.Error(t, err)
	assert.Equal(t, 2, ExitCode(err))
	require.ErrorIs(t, b.Apply(ctx, &ir.Delta{Base: 2, Generation: 3}), backend.ErrDirty)
}

// saveOf turns restore input into what iptables-save would print for it.
func saveOf(restore string) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, l := range strings.Split(restore, "\n") {
		switch {
		case strings.HasPrefix(l, ":"), strings.HasPrefix(l, "-A "):
			b.WriteString(l + "\n")
		case strings.HasPrefix(l, "-I "):
			f := strings.SplitN(l, " ", 4)
			b.WriteString("-A " + f[1] + " " + f[3] + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func TestQuote(t *testing.T) {
	assert.Equal(t, "allowed", quote("allowed"))
	assert.Equal(t, `"a b"`, quote("a b"))
	assert.Equal(t, `"x/y"`, quote("x/y"))
	assert.Equal(t, `a_b_`, quote(sanitize(`a"b'`)))
}

func TestNetMembers(t *testing.T) {
	assert.Equal(t, []string{"0.0.0.0/1", "128.0.0.0/1"}, netMembers(irtest.Prefix("0.0.0.0/0")))
	assert.Equal(t, []string{"::/1", "8000::/1"}, netMembers(irtest.Prefix("::/0")))
	assert.Equal(t, []string{"10.0.0.1"}, netMembers(irtest.Prefix("10.0.0.1/32")))
	assert.Equal(t, []string{"fd00::/64"}, netMembers(irtest.Prefix("fd00::/64")))
}

// TestChanged: the drift check reads chains, jumps and set names, not set
// members.
func TestChanged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drift func(out map[string]string)
		want  bool
	}{
		{"nothing", func(map[string]string) {}, false},
		{"a rule of ours gone", func(out map[string]string) {
			out["iptables-nft-save"] = strings.Replace(out["iptables-nft-save"], "-A PALISADE-FWD -m conntrack", "-A XX -m conntrack", 1)
		}, true},
		{"our chains flushed", func(out map[string]string) {
			var kept []string
			for _, l := range strings.Split(out["ip6tables-nft-save"], "\n") {
				if !strings.HasPrefix(l, "-A PALISADE") {
					kept = append(kept, l)
				}
			}
			out["ip6tables-nft-save"] = strings.Join(kept, "\n")
		}, true},
		{"a rule before our jump", func(out map[string]string) {
			out["iptables-nft-save"] = strings.Replace(out["iptables-nft-save"], "-A FORWARD ", "-A FORWARD -i cni0 -j ACCEPT\n-A FORWARD ", 1)
		}, true},
		{"a set of ours destroyed", func(out map[string]string) {
			out["ipset"] = strings.Replace(out["ipset"], "create pal-a4-front ", "create other-front ", 1)
		}, true},
		{"a set with our prefix added", func(out map[string]string) {
			out["ipset"] += "create pal-extra hash:net family inet\n"
		}, true},
		{"a member gone: left to the periodic resync", func(out map[string]string) {
			out["ipset"] = strings.Replace(out["ipset"], "add pal-a4-front 10.0.0.2\n", "", 1)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b, f := newFakeBackend(t)
			_, err := b.Sync(ctx, goldenSnapshot())
			require.NoError(t, err)
			var sets strings.Builder
			for _, c := range f.writes() {
				if c.name == "ipset" {
					sets.WriteString(c.stdin)
				}
			}
			f.output = map[string]string{
				"ipset":              sets.String(),
				"iptables-nft-save":  saveOf(f.writes()[1].stdin),
				"ip6tables-nft-save": saveOf(f.writes()[2].stdin),
			}
			require.Contains(t, f.output["ipset"], "create pal-a4-front ")
			require.Contains(t, f.output["ipset"], "add pal-a4-front 10.0.0.2\n")
			tc.drift(f.output)
			f.calls = nil
			changed, err := b.Changed(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.want, changed)
			assert.Empty(t, f.writes(), "Changed only reads")
		})
	}
}
