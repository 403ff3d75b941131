package backendtest

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// FuzzSeeds are fuzz inputs for irtest.FromBytes that a target adds to its
// corpus, so that plain `go test` runs them: small and larger snapshots,
// every tier kind, named ports, and the edge cases the contract rejects.
var FuzzSeeds = func() [][]byte {
	seeds := [][]byte{{}, []byte("palisade: one IR contract for every backend")}
	rng := rand.New(rand.NewPCG(10, 5))
	for i := range 30 {
		b := make([]byte, 16+8*i)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		seeds = append(seeds, b)
	}
	return seeds
}()

// CompareWithMemory is the body of a "compiled model equals memory" fuzz
// target. It builds a snapshot from data (irtest.FromBytes) and, when the
// validator accepts it, requires compile to accept it too (a compile error
// on valid IR is a failure: the validator must reject what a backend cannot
// program) and every flow over irtest.FuzzAddrs, irtest.FuzzPorts and
// every protocol to get the memory backend's verdict from the allowed
// function compile returns (an evaluator over what the backend would
// program, with irtest.FuzzNodeIPs as the node's addresses). When the
// validator rejects the snapshot, compile must reject it too, with an
// error that wraps ir.ErrInvalid. It returns how many flows memory allowed
// and denied (both zero for an invalid snapshot), so that a test can show
// its inputs decide both ways.
func CompareWithMemory(t *testing.T, data []byte, compile func(*ir.Snapshot) (allowed func(memory.Flow) (bool, error), err error)) (allowedFlows, deniedFlows int) {
	snap := irtest.FromBytes(data)
	valid := snap.Validate()
	allowed, err := compile(snap.Clone())
	if valid != nil {
		if !ir.IsInvalid(err) {
			t.Fatalf("the validator rejects the snapshot (%v), the backend's compiler does not: %v", valid, err)
		}
		return 0, 0
	}
	if err != nil {
		t.Fatalf("the validator accepts a snapshot the backend cannot compile: %v", err)
	}
	mem := memory.New(memory.Config{NodeIPs: irtest.FuzzNodeIPs})
	if _, err := mem.Sync(context.Background(), snap); err != nil {
		t.Fatalf("memory rejects a valid snapshot: %v", err)
	}
	bad := 0
	for _, src := range irtest.FuzzAddrs {
		for _, dst := range irtest.FuzzAddrs {
			if src == dst || src.Is4() != dst.Is4() {
				continue
			}
			for _, proto := range ir.Protocols {
				for _, port := range irtest.FuzzPorts {
					f := memory.Flow{Src: src, Dst: dst, Protocol: proto, Port: port}
					want := mem.Evaluate(f)
					if want.Allowed {
						allowedFlows++
					} else {
						deniedFlows++
					}
					got, err := allowed(f)
					if err != nil {
						t.Fatalf("%s: the model cannot evaluate: %v", f, err)
					}
					if got != want.Allowed {
						bad++
						if bad <= 5 {
							t.Errorf("%s: compiled model allows=%v, memory allows=%v (egress: %s; ingress: %s)", f, got, want.Allowed, want.Egress, want.Ingress)
						}
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Logf("%d flows differ; the snapshot:\n%s", bad, dump(snap))
	}
	return allowedFlows, deniedFlows
}

func dump(s *ir.Snapshot) string {
	m := memory.New(memory.Config{})
	if _, err := m.Sync(context.Background(), s); err != nil {
		return err.Error()
	}
	return m.Dump()
}
