package nftables

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// TestContractCompile runs the IR contract's edge cases through the
// compiler, without a kernel: it accepts exactly what ir.CheckDelta
// accepts, and compiles every case it accepts.
func TestContractCompile(t *testing.T) {
	for _, tc := range irtest.ContractCases() {
		t.Run(tc.Name, func(t *testing.T) {
			var err error
			if tc.Delta == nil {
				_, err = build(tc.Snapshot, 0)
			} else {
				st, berr := build(tc.Snapshot, 0)
				require.NoError(t, berr)
				if err = st.check(tc.Delta); err == nil {
					require.NoError(t, st.apply(tc.Delta, newTx("palisade")), "an accepted delta compiles")
				}
			}
			if tc.Want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ir.ErrInvalid)
			assert.ErrorContains(t, err, tc.Want)
		})
	}
}

// TestContractFake runs backendtest.RunContract on the backend over the
// fake kernel: Sync and Apply accept exactly what ir.CheckDelta accepts,
// without root.
func TestContractFake(t *testing.T) {
	backendtest.RunContract(t, func(testing.TB) backend.Backend { return newFakeBackend(&fakeKernel{}, "palisade") })
}

// TestContractKernel runs backendtest.RunContract on the kernel.
func TestContractKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: one network namespace per case")
	}
	backendtest.RunContract(t, func(tb testing.TB) backend.Backend {
		b, _ := newTestBackend(tb)
		return b
	})
}

// TestResyncRefusesRepeatedIDs: a resync takes the fast path (the delta
// from the state held) only for a snapshot whose IDs are in order; one that
// repeats an unchanged endpoint or set is refused as the full check refuses
// it, and changes nothing.
func TestResyncRefusesRepeatedIDs(t *testing.T) {
	ctx := context.Background()
	f := &fakeKernel{}
	be := newFakeBackend(f, "palisade")
	snap := testSnapshot()
	_, err := be.Sync(ctx, snap)
	require.NoError(t, err)
	commits := f.commits

	twiceEP := snap.Clone()
	twiceEP.Endpoints = append(twiceEP.Endpoints, twiceEP.Endpoints[0])
	twiceSet := snap.Clone()
	twiceSet.AddressSets = append(twiceSet.AddressSets, twiceSet.AddressSets[0])
	for name, bad := range map[string]*ir.Snapshot{"endpoint": twiceEP, "address set": twiceSet} {
		_, err := be.Sync(ctx, bad)
		assert.ErrorIs(t, err, ir.ErrInvalid, name)
	}
	assert.Equal(t, commits, f.commits, "a refused snapshot commits nothing")
	rep, err := be.Sync(ctx, snap)
	require.NoError(t, err)
	assert.Zero(t, rep.Changes)
}
