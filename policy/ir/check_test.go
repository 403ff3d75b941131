package ir_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// TestContract runs the contract's edge cases through Validate, CheckDelta
// and Snapshot.Apply: they accept and reject alike, with errors that wrap
// ErrInvalid and name the object and field.
func TestContract(t *testing.T) {
	for _, tc := range irtest.ContractCases() {
		t.Run(tc.Name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if tc.Want == "" {
					assert.NoError(t, err, what)
					return
				}
				assert.ErrorIs(t, err, ir.ErrInvalid, what)
				assert.ErrorContains(t, err, tc.Want, what)
			}
			if tc.Delta == nil {
				check("Validate", tc.Snapshot.Validate())
				check("CheckDelta from nothing", ir.CheckDelta((&ir.Snapshot{}).Held(), tc.Snapshot.FromNothing()))
				s := &ir.Snapshot{}
				d := *tc.Snapshot.FromNothing()
				check("Apply from nothing", s.Apply(&d))
				return
			}
			require.NoError(t, tc.Snapshot.Validate(), "the base of a delta case is valid")
			check("CheckDelta", ir.CheckDelta(tc.Snapshot.Held(), tc.Delta))
			s := tc.Snapshot.Clone()
			err := s.Apply(tc.Delta)
			check("Apply", err)
			if err != nil {
				assert.Empty(t, cmp.Diff(tc.Snapshot, s, irCmp), "a rejected delta changed the snapshot")
				return
			}
			assert.Equal(t, tc.Delta.Generation, s.Generation)
			assert.NoError(t, s.Validate(), "an accepted delta leaves a valid snapshot")
		})
	}
}

func TestCheckDeltaReportsEveryProblem(t *testing.T) {
	d := &ir.Delta{
		AddedAddressSets: []ir.AddressSet{irtest.AddrSet("net")},
		RuleLists: []ir.RuleList{irtest.List("x", "NetworkPolicy", "ns", "x", ir.Egress,
			irtest.Rule(2, "Maybe", irtest.Peers("gone"), irtest.Ports(irtest.Port(ir.TCP, 90, 80))))},
		RemovedEndpoints: []string{"ns/zz"},
	}
	err := ir.CheckDelta(irtest.ContractBase().Held(), d)
	require.ErrorIs(t, err, ir.ErrInvalid)
	for _, w := range []string{`address set "net": added but exists`, `rule list "x" rule 2: unknown action "Maybe"`,
		`unknown address set "gone"`, `port range 90-80 is empty`, `endpoint "ns/zz": removed but does not exist`} {
		assert.ErrorContains(t, err, w)
	}
	assert.ErrorIs(t, ir.CheckDelta(irtest.ContractBase().Held(), nil), ir.ErrInvalid)
}
