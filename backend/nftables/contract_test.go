package nftables

import (
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
