package iptables

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// forModes runs fn once per iptables variant, each on a fresh namespace.
func forModes(t *testing.T, fn func(t *testing.T, mode Mode)) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			fn(t, mode)
		})
	}
}

// chainsIn lists the chains iptables-save shows in ns (family 0 or 1).
func chainsIn(t *testing.T, ns netns.NsHandle, b *Backend, f int) []string {
	var out []string
	for _, line := range strings.Split(sh(t, ns, b.bins.save[f], "-t", "filter"), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			name, _, _ = strings.Cut(name, " ")
			out = append(out, name)
		}
	}
	return out
}

// requireInSync checks that the kernel holds exactly what a fresh build of
// snap renders (no difference left for Sync to fix).
func requireInSync(t *testing.T, b *Backend, snap *ir.Snapshot) {
	t.Helper()
	want, err := buildLogging(b.n, snap, b.log)
	require.NoError(t, err)
	k, err := b.read(context.Background())
	require.NoError(t, err)
	p, diff := planDiff(b.n, k, want.m, true)
	require.NoError(t, p.err)
	assert.Empty(t, diff, "kernel differs from the snapshot")
}

func TestSyncProgramsSnapshot(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		b, ns := newTestBackend(t, mode)
		n, repairs := mustSync(t, b, testSnapshot())
		assert.Positive(t, n)
		assert.Empty(t, repairs, "first Sync of a fresh backend")
		requireInSync(t, b, testSnapshot())
		for f := range 2 {
			for _, c := range chainsIn(t, ns, b, f) {
				if c == "INPUT" || c == "FORWARD" || c == "OUTPUT" {
					continue
				}
				assert.True(t, strings.HasPrefix(c, DefaultChainPrefix+"-"), "chain %s is not ours", c)
			}
			save := sh(t, ns, b.bins.save[f], "-t", "filter")
			assert.Contains(t, save, "-A FORWARD -m comment --comment \"palisade: network policy of local endpoints\" -j PALISADE-FWD")
			assert.Contains(t, save, "-A INPUT -m comment --comment \"palisade: egress policy of local endpoints to this node\" -j PALISADE-INPUT")
			assert.NotContains(t, save, "-A OUTPUT", "node to pod traffic is never filtered")
			for _, line := range strings.Split(save, "\n") {
				if strings.HasPrefix(line, "-A PALISADE-") {
					assert.Contains(t, line, "-m comment --comment ", "every rule carries a comment")
				}
			}
		}
		assert.Contains(t, sh(t, ns, b.bins.save[0], "-t", "filter"), `--comment "NetworkPolicy default/db ingress rule 0: allow"`)
		sets := sh(t, ns, "ipset", "save")
		assert.Contains(t, sets, "add pal-a4-all 0.0.0.0/1")
		assert.Contains(t, sets, "add pal-a4-all 128.0.0.0/1")
		assert.Contains(t, sets, "add pal-a6-all ::/1")
		assert.Contains(t, sets, "add pal-n4-http-tcp 10.0.0.10,tcp:8080")
		assert.Contains(t, sets, "add pal-n6-http-tcp fd00::10,tcp:8080")
		for _, name := range strings.Fields(sh(t, ns, "ipset", "list", "-n")) {
			assert.True(t, strings.HasPrefix(name, "pal-"), "set %s is not ours", name)
		}
		got, err := b.Mode(context.Background())
		require.NoError(t, err)
		assert.Equal(t, mode, got)
	})
}

func TestSyncIsIdempotent(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		b, ns := newTestBackend(t, mode)
		mustSync(t, b, testSnapshot())
		n, repairs := mustSync(t, b, testSnapshot())
		assert.Zero(t, n)
		assert.Empty(t, repairs)
		// A restarted agent (a new Backend) finds everything in place.
		b2 := reopen(t, ns, mode)
		n, repairs = mustSync(t, b2, testSnapshot())
		assert.Zero(t, n, "a restart rewrites nothing")
		assert.Empty(t, repairs)
	})
}

func TestSyncRepairsDrift(t *testing.T) {
	// Each case changes our state by hand inside the namespace; Sync must
	// name the drift, repair it, and then find nothing to do.
	drifts := []struct {
		name  string
		drift func(t *testing.T, ns netns.NsHandle, b *Backend)
		want  string
	}{
		{"rule deleted", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "iptables-"+string(b.mode), "-w", "-D", "PALISADE-FWD", "1")
		}, "IPv4 chain PALISADE-FWD: rules differ"},
		{"list chain flushed", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "ip6tables-"+string(b.mode), "-w", "-F", b.n.listChain("np/default/db/ingress"))
		}, "IPv6 chain " + (&names{chain: DefaultChainPrefix}).listChain("np/default/db/ingress") + ": rules differ"},
		{"hook removed", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "iptables-"+string(b.mode), "-w", "-D", "FORWARD", "1")
		}, "IPv4 chain FORWARD: the rule entering PALISADE is missing"},
		{"set member removed", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "ipset", "del", "pal-a4-frontend", "10.0.0.2")
		}, "set pal-a4-frontend: member 10.0.0.2 missing"},
		{"foreign member added", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "ipset", "add", "pal-a4-frontend", "10.9.9.9")
		}, "set pal-a4-frontend: member 10.9.9.9 not ours to keep"},
		{"accept inserted before our jump in FORWARD", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			// Another component's `-I FORWARD 1 … -j ACCEPT` would decide
			// before our checks.
			sh(t, ns, "iptables-"+string(b.mode), "-w", "-I", "FORWARD", "1", "-s", "10.0.0.0/8", "-j", "ACCEPT")
			t.Cleanup(func() {
				assert.Contains(t, sh(t, ns, "iptables-"+string(b.mode)+"-save", "-t", "filter"), "-A FORWARD -s 10.0.0.0/8 -j ACCEPT", "the rule of another component stays")
			})
		}, "IPv4 chain FORWARD: 1 rules of others before the rule entering PALISADE, which must be first"},
		{"rules inserted before our jump in INPUT", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "ip6tables-"+string(b.mode), "-w", "-I", "INPUT", "1", "-j", "ACCEPT")
			sh(t, ns, "ip6tables-"+string(b.mode), "-w", "-I", "INPUT", "1", "-p", "tcp", "-j", "ACCEPT")
		}, "IPv6 chain INPUT: 2 rules of others before the rule entering PALISADE, which must be first"},
		{"stray chain", func(t *testing.T, ns netns.NsHandle, b *Backend) {
			sh(t, ns, "iptables-"+string(b.mode), "-w", "-N", "PALISADE-STRAY")
		}, "IPv4 chain PALISADE-STRAY: not ours to keep"},
	}
	for _, mode := range modes {
		for _, d := range drifts {
			t.Run(string(mode)+"/"+d.name, func(t *testing.T) {
				t.Parallel()
				b, ns := newTestBackend(t, mode)
				mustSync(t, b, testSnapshot())
				d.drift(t, ns, b)
				n, repairs := mustSync(t, b, testSnapshot())
				assert.Positive(t, n)
				assert.NotEmpty(t, repairs)
				assert.Contains(t, strings.Join(repairs, "\n"), d.want)
				requireInSync(t, b, testSnapshot())
				requireJumpsFirst(t, ns, b)
				n, repairs = mustSync(t, b, testSnapshot())
				assert.Zero(t, n)
				assert.Empty(t, repairs)
			})
		}
	}
}

// requireJumpsFirst checks that the first rule of FORWARD and INPUT, in
// both families, enters our chains, and that the rules of others there
// were left in place.
func requireJumpsFirst(t *testing.T, ns netns.NsHandle, b *Backend) {
	t.Helper()
	for _, save := range []string{"iptables-" + string(b.mode) + "-save", "ip6tables-" + string(b.mode) + "-save"} {
		first := map[string]string{}
		for _, line := range strings.Split(sh(t, ns, save, "-t", "filter"), "\n") {
			chain, rule, ok := strings.Cut(strings.TrimPrefix(line, "-A "), " ")
			if ok && strings.HasPrefix(line, "-A ") && first[chain] == "" {
				first[chain] = rule
			}
		}
		assert.Contains(t, first["FORWARD"], "-j "+b.n.fwd(), save)
		assert.Contains(t, first["INPUT"], "-j "+b.n.input(), save)
	}
}

func TestApplyMatchesSync(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		ctx := context.Background()
		b, _ := newTestBackend(t, mode)
		snap := testSnapshot()
		mustSync(t, b, snap)
		for _, d := range deltaSteps() {
			require.NoError(t, b.Apply(ctx, &d), "delta %d→%d", d.Base, d.Generation)
			require.NoError(t, snap.Apply(&d))
			requireInSync(t, b, snap)
			n, repairs := mustSync(t, b, snap)
			assert.Zero(t, n, "Sync after Apply %d→%d", d.Base, d.Generation)
			assert.Empty(t, repairs)
		}
	})
}

func TestApplyRefuses(t *testing.T) {
	ctx := context.Background()
	b, err := New(Config{Runner: &fakeRunner{}})
	require.NoError(t, err)
	require.ErrorIs(t, b.Apply(ctx, &ir.Delta{Base: 0, Generation: 1}), backend.ErrNotSynced)
	_, err = b.Sync(ctx, testSnapshot())
	require.NoError(t, err)
	require.ErrorIs(t, b.Apply(ctx, &ir.Delta{Base: 7, Generation: 8}), ir.ErrStaleBase)
	err = b.Apply(ctx, &ir.Delta{Base: 1, Generation: 2, RemovedEndpoints: []string{"x/y"}})
	require.ErrorIs(t, err, ir.ErrInvalid)
	require.ErrorContains(t, err, `endpoint "x/y": removed but does not exist`)
	_, err = b.Sync(ctx, &ir.Snapshot{Generation: 3, RuleLists: []ir.RuleList{irtest.List("l", "NetworkPolicy", "a", "b", ir.Ingress, irtest.Rule(0, ir.Allow, irtest.Peers("ghost")))}})
	require.ErrorIs(t, err, ir.ErrInvalid)
	require.ErrorContains(t, err, `unknown address set "ghost"`)
}

func TestCleanup(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		ctx := context.Background()
		b, ns := newTestBackend(t, mode)
		require.NoError(t, b.Cleanup(ctx), "nothing to clean")
		mustSync(t, b, testSnapshot())
		require.NoError(t, b.Cleanup(ctx))
		for f := range 2 {
			assert.ElementsMatch(t, []string{"INPUT", "FORWARD", "OUTPUT"}, chainsIn(t, ns, b, f))
			assert.NotContains(t, sh(t, ns, b.bins.save[f], "-t", "filter"), "-A ")
		}
		assert.Empty(t, strings.TrimSpace(sh(t, ns, "ipset", "list", "-n")))
		require.NoError(t, b.Cleanup(ctx), "idempotent")
		// The backend starts over after a Cleanup.
		n, _ := mustSync(t, b, testSnapshot())
		assert.Positive(t, n)
	})
}

func TestNewRequiresNamespace(t *testing.T) {
	_, err := New(Config{})
	require.ErrorContains(t, err, "NetNS is unset")
	_, err = New(Config{AllowCurrentNamespace: true, ChainPrefix: "A-VERY-LONG-CHAIN-PREFIX"})
	require.ErrorContains(t, err, "too long")
	_, err = New(Config{AllowCurrentNamespace: true, AllowMark: 3})
	require.ErrorContains(t, err, "single bits")
	_, err = New(Config{AllowCurrentNamespace: true, Mode: "iptables"})
	require.ErrorContains(t, err, "unknown mode")
	b, err := New(Config{AllowCurrentNamespace: true})
	require.NoError(t, err)
	require.NoError(t, b.Close())
}

func TestSyncReplacesSetOfWrongType(t *testing.T) {
	forModes(t, func(t *testing.T, mode Mode) {
		b, ns := newTestBackend(t, mode)
		// Sets of our names but another type, one of them referenced by a
		// chain of ours (as an older version or someone else left them):
		// neither can be destroyed while referenced nor swapped with a set
		// of another type.
		sh(t, ns, "ipset", "create", "pal-a4-frontend", "hash:ip,port", "family", "inet")
		sh(t, ns, "ipset", "add", "pal-a4-frontend", "10.9.9.9,tcp:80")
		sh(t, ns, "ipset", "create", "pal-a6-frontend", "hash:net", "family", "inet")
		sh(t, ns, "iptables-"+string(mode), "-w", "-N", "PALISADE-OLD")
		sh(t, ns, "iptables-"+string(mode), "-w", "-A", "PALISADE-OLD", "-m", "set", "--match-set", "pal-a4-frontend", "dst,dst", "-j", "RETURN")

		rep, err := b.Sync(context.Background(), testSnapshot())
		require.NoError(t, err)
		assert.Positive(t, rep.Changes)
		all := strings.Join(rep.Repairs, "\n")
		assert.Contains(t, all, "set pal-a4-frontend: hash:ip,port family inet, want hash:net family inet: replaced")
		assert.Contains(t, all, "set pal-a6-frontend: hash:net family inet, want hash:net family inet6: replaced")
		requireInSync(t, b, testSnapshot())
		sets := sh(t, ns, "ipset", "list", "-n")
		assert.NotContains(t, sets, b.n.tempSet("pal-a4-frontend"), "the stand-in is gone")
		assert.Contains(t, sh(t, ns, "ipset", "list", "-t", "pal-a4-frontend"), "Type: hash:net")

		n, repairs := mustSync(t, b, testSnapshot())
		assert.Zero(t, n)
		assert.Empty(t, repairs)
	})
}

func TestAutoModeFollowsTheRules(t *testing.T) {
	// A namespace whose rules are in one variant: Auto picks that one,
	// whatever `iptables --version` says.
	forModes(t, func(t *testing.T, mode Mode) {
		ns := newNetNS(t)
		sh(t, ns, "iptables-"+string(mode), "-w", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "ACCEPT")
		b := reopen(t, ns, ModeAuto)
		got, err := b.Mode(context.Background())
		require.NoError(t, err)
		assert.Equal(t, mode, got)
	})
}
