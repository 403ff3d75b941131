package informer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/palisade-net/palisade/backend"
)

type value struct{ v float64 }

func (x *value) Add(v float64)     { x.v += v }
func (x *value) Set(v float64)     { x.v = v }
func (x *value) Observe(v float64) { x.v += v }

func TestInstrumentsRecordAndSkipNil(t *testing.T) {
	var sync, apply, latency, changes, repairs, gen, eps, lists, members value
	errs := map[string]*value{}
	in := Instruments{
		SyncDuration: &sync, ApplyDuration: &apply, Latency: &latency,
		SyncChanges: &changes, Repairs: &repairs, Generation: &gen,
		Endpoints: &eps, RuleLists: &lists, SetMembers: &members,
		Errors: func(kind string) Counter {
			if kind == ErrorSync {
				return nil // a kind the caller does not count
			}
			if errs[kind] == nil {
				errs[kind] = &value{}
			}
			return errs[kind]
		},
	}
	in.ObserveSync(1500*time.Millisecond, backend.SyncReport{Changes: 7})
	in.ObserveApply(2 * time.Second)
	in.ObserveLatency(time.Second / 4)
	in.AddRepairs(3)
	in.SetGeneration(9)
	in.SetCounts(1, 2, 3)
	in.IncError(ErrorApply)
	in.IncError(ErrorApply)
	in.IncError(ErrorSync)
	assert.Equal(t, []float64{1.5, 2, 0.25, 7, 3, 9, 1, 2, 3},
		[]float64{sync.v, apply.v, latency.v, changes.v, repairs.v, gen.v, eps.v, lists.v, members.v})
	assert.Equal(t, map[string]*value{ErrorApply: {2}}, errs)

	// The zero value records nothing and does not fail.
	var zero Instruments
	zero.ObserveSync(time.Second, backend.SyncReport{Changes: 1})
	zero.SetCounts(1, 2, 3)
	zero.IncError(ErrorApply)
}
