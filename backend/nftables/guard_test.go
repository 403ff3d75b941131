package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// guardedSnapshot is testSnapshot with an interface for every endpoint.
func guardedSnapshot() *ir.Snapshot {
	s := testSnapshot()
	for i := range s.Endpoints {
		s.Endpoints[i].Interface = fmt.Sprintf("veth%d", i)
	}
	return s
}

// unguarded returns s at generation gen without interfaces.
func unguarded(s *ir.Snapshot, gen uint64) *ir.Snapshot {
	s = s.Clone()
	s.Generation = gen
	for i := range s.Endpoints {
		s.Endpoints[i].Interface = ""
	}
	return s
}

// The guard objects follow the interfaces: created in both tables with the
// first, their elements one per (interface, address), gone with the last.
func TestGuardObjectsFake(t *testing.T) {
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	ctx := context.Background()

	_, err := b.Sync(ctx, testSnapshot())
	require.NoError(t, err)
	assert.Nil(t, f.br, "no bridge table without interfaces")
	assert.NotContains(t, f.tbl.chains, chainSourceGuard)

	snap := guardedSnapshot()
	snap.Generation = 2
	_, err = b.Sync(ctx, snap)
	require.NoError(t, err)
	require.NotNil(t, f.br)
	pairs := 0
	for _, ep := range snap.Endpoints {
		pairs += len(ep.IPs)
	}
	for _, tbl := range []*fakeTable{f.tbl, f.br} {
		require.Contains(t, tbl.chains, chainSourceGuard)
		assert.Len(t, tbl.sets[setGuardIfaces].elems, len(snap.Endpoints))
		assert.Equal(t, pairs, len(tbl.sets["guard-v4"].elems)+len(tbl.sets["guard-v6"].elems))
	}
	drift, err := b.Drift(ctx)
	require.NoError(t, err)
	assert.Empty(t, drift)

	// One endpoint loses its interface: its elements go, the rest stay.
	d := snap.Clone()
	d.Generation = 3
	gone := d.Endpoints[0]
	d.Endpoints[0].Interface = ""
	_, err = b.Sync(ctx, d)
	require.NoError(t, err)
	for _, tbl := range []*fakeTable{f.tbl, f.br} {
		assert.Len(t, tbl.sets[setGuardIfaces].elems, len(snap.Endpoints)-1)
		assert.Equal(t, pairs-len(gone.IPs), len(tbl.sets["guard-v4"].elems)+len(tbl.sets["guard-v6"].elems))
	}

	// Someone deletes the bridge table: Sync reads it back and repairs.
	f.bump(func(*fakeTable) {})
	f.br = nil
	drift, err = b.Drift(ctx)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(drift, "\n"), "bridge table: table missing")
	rep, err := b.Sync(ctx, d)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(rep.Repairs, "\n"), "bridge table: table missing")
	require.NotNil(t, f.br)
	assert.Len(t, f.br.sets[setGuardIfaces].elems, len(snap.Endpoints)-1)

	// The last interface goes: so do the chain, the sets and the table.
	_, err = b.Sync(ctx, unguarded(d, 4))
	require.NoError(t, err)
	assert.Nil(t, f.br)
	assert.NotContains(t, f.tbl.chains, chainSourceGuard)
	assert.NotContains(t, f.tbl.sets, setGuardIfaces)

	// A bridge table left behind (by an agent that crashed) is unexpected.
	_, err = b.Sync(ctx, d)
	require.NoError(t, err)
	b2 := newFakeBackend(f, "palisade")
	rep, err = b2.Sync(ctx, unguarded(d, 5))
	require.NoError(t, err)
	assert.Nil(t, f.br)
	_ = rep
}

// The installed nft lists and reloads both tables, and names what it reads;
// the kernel keeps what we program, drift is repaired, Cleanup removes both.
func TestGuardKernel(t *testing.T) {
	b, ns := newTestBackend(t)
	ctx := context.Background()
	snap := guardedSnapshot()
	mustSync(t, b, snap)

	var chains []string
	for name := range b.st.m.chains {
		chains = append(chains, name)
	}
	requireNftReads(t, ns, b.cfg.TableName, chains)
	out, err := nftCmd(t, ns, "", "list", "table", "bridge", b.cfg.TableName)
	require.NoError(t, err, out)
	for _, want := range []string{
		"iifname != @guard-ifaces accept", "ether type arp accept",
		"iifname . ip saddr @guard-v4 accept", "ip6 saddr fe80::/10 accept", "ip6 saddr :: accept",
		"iifname . ip6 saddr @guard-v6 accept", "type ifname . ipv4_addr", `"veth0" . `,
	} {
		assert.Contains(t, out, want)
	}
	out, err = nftCmd(t, ns, "", "list", "chain", "inet", b.cfg.TableName, chainSourceGuard)
	require.NoError(t, err, out)
	assert.Contains(t, out, "type filter hook prerouting priority raw; policy accept;")
	drift, err := b.Drift(ctx)
	require.NoError(t, err)
	assert.Empty(t, drift, "what we read back is what we programmed")
	rendered, err := RenderConfig(snap, Config{TableName: "palisade-render"})
	require.NoError(t, err)
	assert.Contains(t, rendered, "table bridge palisade-render {")
	out, err = nftCmd(t, ns, rendered, "-c", "-f", "-")
	require.NoError(t, err, "nft cannot load Render's text:\n%s", out)

	// Drift: an element removed from the inet set, the bridge table gone.
	ep := snap.Endpoints[0]
	var v4 netip.Addr
	for _, ip := range ep.IPs {
		if ip.Is4() {
			v4 = ip
		}
	}
	require.True(t, v4.IsValid())
	out, err = nftCmd(t, ns, "", "delete", "element", "inet", b.cfg.TableName, "guard-v4", fmt.Sprintf("{ %q . %s }", ep.Interface, v4))
	require.NoError(t, err, out)
	out, err = nftCmd(t, ns, "", "delete", "table", "bridge", b.cfg.TableName)
	require.NoError(t, err, out)
	drift, err = b.Drift(ctx)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(drift, "\n"), "set guard-v4: 1 elements missing")
	assert.Contains(t, strings.Join(drift, "\n"), "bridge table: table missing")
	changed, err := b.Changed(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	_, repairs := mustSync(t, b, snap)
	assert.NotEmpty(t, repairs)
	drift, err = b.Drift(ctx)
	require.NoError(t, err)
	assert.Empty(t, drift)

	require.NoError(t, b.Cleanup(ctx))
	for _, fam := range []byte{unix.NFPROTO_INET, unix.NFPROTO_BRIDGE} {
		ks, err := b.c.read(fam, b.cfg.TableName)
		require.NoError(t, err)
		assert.False(t, ks.exists, "family %d", fam)
	}
	require.NoError(t, b.Cleanup(ctx), "Cleanup of nothing")
}
