package nftables

import (
	"context"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// These tests run the backend's diff, read and batch logic against
// fakeKernel: no root, no namespace. The kernel tests check the same
// behaviour against the real thing.

// requireFakeEquals checks that the fake holds exactly what a fresh build
// of snap describes.
func requireFakeEquals(t *testing.T, f *fakeKernel, snap *ir.Snapshot) {
	t.Helper()
	want, err := build(snap, 0)
	require.NoError(t, err)
	have, err := f.read(unix.NFPROTO_INET, "palisade")
	require.NoError(t, err)
	require.Empty(t, diffModels(have, want.m, nil), "the fake kernel differs from the snapshot")
}

func TestFakeSyncApplyAndResync(t *testing.T) {
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	snap := testSnapshot()
	changes, repairs := mustSync(t, b, snap)
	assert.Positive(t, changes)
	assert.Empty(t, repairs)
	assert.Equal(t, 1, f.commits, "one batch")
	requireFakeEquals(t, f, snap)

	changes, _ = mustSync(t, b, snap)
	assert.Zero(t, changes)
	assert.Equal(t, 1, f.commits, "nothing to do sends nothing")

	steps := deltaSteps()
	steps[3].Endpoints = append(steps[3].Endpoints, irtest.Endpoint("default/web", []string{"10.0.0.2", "fd00::2"},
		irtest.Ingress(irtest.Tier(ir.TierBaseline, "banp/default/ingress"))))
	for _, d := range steps {
		require.NoError(t, snap.Apply(&d))
		commits := f.commits
		require.NoError(t, b.Apply(context.Background(), &d), "delta %d→%d", d.Base, d.Generation)
		assert.Equal(t, commits+1, f.commits, "delta %d→%d is one batch", d.Base, d.Generation)
		requireFakeEquals(t, f, snap)
		changes, repairs := mustSync(t, b, snap)
		assert.Zero(t, changes, "Sync after Apply %d→%d", d.Base, d.Generation)
		assert.Empty(t, repairs)
	}
}

func TestFakeSyncRepairsDrift(t *testing.T) {
	list := listChainName(ir.IPv4, "np/default/db/ingress")
	drifts := []struct {
		name  string
		drift func(t *fakeTable)
		want  string
	}{
		{"rules flushed", func(t *fakeTable) { t.chains[list].rules = nil }, "chain " + list + ": rules differ"},
		{"chain deleted", func(t *fakeTable) { t.chains[list].rules = nil; delete(t.chains, list) }, "chain " + list + " missing"},
		{"element removed", func(t *fakeTable) {
			for k := range t.sets["a4-frontend"].elems {
				delete(t.sets["a4-frontend"].elems, k)
				break
			}
		}, "set a4-frontend: 1 elements missing"},
		{"foreign set", func(t *fakeTable) { t.sets["extra"] = &fakeSet{attrs: setAttrs{keyType: typeIPv4, keyLen: 4}} }, "set extra unexpected"},
		{"set of the wrong kind", func(t *fakeTable) {
			s := t.sets["a4-frontend"]
			s.attrs.flags = unix.NFT_SET_INTERVAL
		}, "set a4-frontend: type or flags differ"},
		{"table dormant", func(t *fakeTable) { t.flags = unix.NFT_TABLE_F_DORMANT }, "table dormant"},
		{"table deleted", nil, "table missing"},
	}
	for _, d := range drifts {
		t.Run(d.name, func(t *testing.T) {
			f := &fakeKernel{}
			b := newFakeBackend(f, "palisade")
			snap := testSnapshot()
			mustSync(t, b, snap)
			if d.drift == nil {
				f.mu.Lock()
				f.tbl, f.gen = nil, f.gen+1
				f.mu.Unlock()
			} else {
				f.bump(d.drift)
			}
			assert.True(t, mustChanged(t, b), "Changed after the drift")
			changes, repairs := mustSync(t, b, snap)
			assert.Positive(t, changes)
			assert.Contains(t, strings.Join(repairs, "\n"), d.want)
			requireFakeEquals(t, f, snap)
			assert.False(t, mustChanged(t, b), "Changed after the repair")
			changes, repairs = mustSync(t, b, snap)
			assert.Zero(t, changes)
			assert.Empty(t, repairs)
		})
	}
}

func mustChanged(tb testing.TB, b *Backend) bool {
	tb.Helper()
	changed, err := b.Changed(context.Background())
	require.NoError(tb, err)
	return changed
}

func TestFakeChanged(t *testing.T) {
	ctx := context.Background()
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	assert.False(t, mustChanged(t, b), "before the first Sync: nothing to watch")

	snap := testSnapshot()
	mustSync(t, b, snap)
	assert.False(t, mustChanged(t, b), "after our own Sync")
	for _, d := range deltaSteps()[:2] {
		require.NoError(t, snap.Apply(&d))
		require.NoError(t, b.Apply(ctx, &d))
		assert.False(t, mustChanged(t, b), "after our own Apply %d→%d", d.Base, d.Generation)
	}

	// Another table's change moves the generation: a false alarm that the
	// Sync it calls for settles without a commit.
	f.bump(func(*fakeTable) {})
	assert.True(t, mustChanged(t, b), "after someone else's commit")
	commits := f.commits
	changes, repairs := mustSync(t, b, snap)
	assert.Zero(t, changes)
	assert.Empty(t, repairs)
	assert.Equal(t, commits, f.commits, "nothing to repair, nothing committed")
	assert.False(t, mustChanged(t, b), "after the Sync that read back")

	// Our table flushed: Changed, and the Sync repairs it.
	f.mu.Lock()
	f.tbl, f.gen = nil, f.gen+1
	f.mu.Unlock()
	assert.True(t, mustChanged(t, b), "after our table was deleted")
	_, repairs = mustSync(t, b, snap)
	assert.Contains(t, repairs, "table missing")
	requireFakeEquals(t, f, snap)
	assert.False(t, mustChanged(t, b))

	require.NoError(t, b.Cleanup(ctx))
	assert.False(t, mustChanged(t, b), "after Cleanup: nothing to watch")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := b.Changed(cancelled)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestFakeRestartReconcilesInPlace(t *testing.T) {
	f := &fakeKernel{}
	snap := testSnapshot()
	mustSync(t, newFakeBackend(f, "palisade"), snap)
	commits := f.commits
	changes, repairs := mustSync(t, newFakeBackend(f, "palisade"), snap)
	assert.Zero(t, changes, "a restart with the same state rewrites nothing")
	assert.Empty(t, repairs)
	assert.Equal(t, commits, f.commits)
}

func TestFakeApplyAfterSomeoneElseCommitted(t *testing.T) {
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	snap := testSnapshot()
	mustSync(t, b, snap)
	f.bump(func(*fakeTable) {}) // another table's change: a new generation
	d := deltaSteps()[0]
	require.NoError(t, snap.Apply(&d))
	require.NoError(t, b.Apply(context.Background(), &d), "the generation check fails, the delta applies unchecked")
	requireFakeEquals(t, f, snap)
	changes, repairs := mustSync(t, b, snap)
	assert.Zero(t, changes)
	assert.Empty(t, repairs, "the next Sync reads back and finds nothing to repair")
}

func TestFakeBatchIsAllOrNothing(t *testing.T) {
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	snap := testSnapshot()
	mustSync(t, b, snap)
	before, err := f.read(unix.NFPROTO_INET, "palisade")
	require.NoError(t, err)
	gen := f.gen

	// A good message, then one the kernel refuses (a chain that does not
	// exist): nothing of the batch stays.
	tx := newTx("palisade")
	tx.flushSet(b.st.m.sets["a4-frontend"])
	msgs := tx.messages()
	var a attrBuf
	a.putStr(unix.NFTA_CHAIN_TABLE, "palisade")
	a.putStr(unix.NFTA_CHAIN_NAME, "no-such-chain")
	msgs = append(msgs, tx.msg(unix.NFT_MSG_DELCHAIN, 0, a.b))
	_, err = f.commit(msgs, 0, false)
	require.ErrorIs(t, err, unix.ENOENT)
	after, err := f.read(unix.NFPROTO_INET, "palisade")
	require.NoError(t, err)
	assert.Empty(t, diffModels(after, before.m, nil))
	assert.Equal(t, gen, f.gen)

	// A chain still jumped to cannot go.
	profile := b.st.m.sets["ingress-v4"].jumps[irtest.Addr("10.0.0.10")]
	tx = newTx("palisade")
	tx.deleteChain(profile, 0)
	_, err = f.commit(tx.messages(), 0, false)
	require.ErrorIs(t, err, unix.EBUSY)

	// A stale generation refuses the batch.
	_, err = f.commit([]netlink.Message{}, gen-1, true)
	require.ErrorIs(t, err, errGenChanged)
}

func TestFakeUpgradeFromTwoMapDispatch(t *testing.T) {
	// Before nft could list our table, dispatch was two maps: address →
	// profile number (a data map), then number → jump ("profiles"). A
	// node upgraded in place holds that layout: Sync replaces it within
	// one batch.
	f := &fakeKernel{}
	b := newFakeBackend(f, "palisade")
	snap := testSnapshot()
	mustSync(t, b, snap)
	f.bump(func(t *fakeTable) {
		profiles := &fakeSet{attrs: setAttrs{flags: unix.NFT_SET_MAP, keyType: 4, keyLen: 8, dataType: typeVerdict}, elems: map[string]element{}}
		for i, name := range []string{"ingress-v4", "egress-v4", "ingress-v6", "egress-v6"} {
			s := t.sets[name]
			s.attrs.dataType, s.attrs.dataLen = 4, 8
			old := s.elems
			s.elems = map[string]element{}
			for _, e := range old {
				id := []byte{0, 0, 0, 0, 0, 0, byte(i), byte(len(s.elems))}
				s.elems[elemKey(e)] = element{key: e.key, data: id}
				profiles.elems[string(id)] = element{key: id, chain: e.chain}
			}
		}
		t.sets["profiles"] = profiles
	})
	changes, repairs := mustSync(t, b, snap)
	assert.Positive(t, changes)
	all := strings.Join(repairs, "\n")
	assert.Contains(t, all, "set ingress-v4: type or flags differ")
	requireFakeEquals(t, f, snap)
	have, err := f.read(unix.NFPROTO_INET, "palisade")
	require.NoError(t, err)
	assert.NotContains(t, have.m.sets, "profiles")
}
