package selector

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestIDSet drives an idSet and a map with the same random operations, with
// a threshold low enough to switch representation often.
func TestIDSet(t *testing.T) {
	withArrayMax(t, 32)
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 5))
		var s idSet
		want := map[uint32]bool{}
		universe := uint32(8 + rng.IntN(300))
		for step := range 3000 {
			x := rng.Uint32N(universe)
			switch rng.IntN(3) {
			case 0, 1:
				if seed%2 == 0 && want[x] {
					break // add is only called for absent members by the index
				}
				s.add(x)
				want[x] = true
			default:
				if got := s.remove(x); got != want[x] {
					t.Fatalf("seed %d step %d: remove(%d) = %v", seed, step, x, got)
				}
				delete(want, x)
			}
			if s.len() != len(want) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, s.len(), len(want))
			}
			if got, w := slices.Collect(s.all), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
				t.Fatalf("seed %d step %d: members %v, want %v", seed, step, got, w)
			}
			for _, y := range []uint32{x, x + 1, universe + 70, 0} {
				if s.has(y) != want[y] {
					t.Fatalf("seed %d step %d: has(%d) = %v", seed, step, y, !want[y])
				}
			}
		}
	}
}

func TestIDSetEarlyStop(t *testing.T) {
	withArrayMax(t, 4)
	var s idSet
	for x := range uint32(100) {
		s.add(x * 3)
	}
	n := 0
	for range s.all {
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Fatalf("iterated %d", n)
	}
}
