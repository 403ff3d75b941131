package nftables

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// FuzzModelMatchesMemory: for any IR the validator accepts, the ruleset
// the compiler would program (traced packet by packet, no kernel) decides
// every flow as the memory backend does; the compiler accepts exactly what
// the validator accepts.
func FuzzModelMatchesMemory(f *testing.F) {
	for _, seed := range backendtest.FuzzSeeds {
		f.Add(seed)
	}
	compile := modelOf
	f.Fuzz(func(t *testing.T, data []byte) {
		backendtest.CompareWithMemory(t, data, compile)
	})
}

// TestModelSeedsDecideBothWays: the seed corpus is not vacuous: its valid
// snapshots allow some flows and deny others, and some seeds are invalid.
func TestModelSeedsDecideBothWays(t *testing.T) {
	compile := modelOf
	allowed, denied, invalid := 0, 0, 0
	for _, seed := range backendtest.FuzzSeeds {
		a, d := backendtest.CompareWithMemory(t, seed, compile)
		allowed, denied = allowed+a, denied+d
		if irtest.FromBytes(seed).Validate() != nil {
			invalid++
		}
	}
	t.Logf("%d flows allowed, %d denied; %d of %d seeds invalid", allowed, denied, invalid, len(backendtest.FuzzSeeds))
	assert.Positive(t, allowed)
	assert.Positive(t, denied)
	assert.Positive(t, invalid)
}

// modelOf compiles a snapshot and returns its tracer.
func modelOf(snap *ir.Snapshot) (func(memory.Flow) (bool, error), error) {
	st, err := build(snap, 0)
	if err != nil {
		return nil, err
	}
	return newTracer(st.m, irtest.FuzzNodeIPs).allowed, nil
}
