package backendtest

import (
	"context"
	"errors"
	"testing"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
	"github.com/palisade-net/palisade/policy/ir/irtest"
)

// RunContract checks that a backend keeps the IR contract exactly as
// ir.CheckDelta states it, on the edge cases of irtest.ContractCases: Sync
// of each snapshot case, and Apply of each delta case after a Sync of its
// base, succeed exactly when the validator accepts the case, and otherwise
// fail with an error that wraps ir.ErrInvalid. A rejected Apply must change
// nothing: an empty delta from the base generation still applies after it
// (the backend is neither dirty nor moved on). newBackend returns a fresh
// backend for each case; it needs no lab, so kernel backends can run it in
// any namespace of their own (or with a fake kernel layer).
func RunContract(t *testing.T, newBackend func(t testing.TB) backend.Backend) {
	ctx := context.Background()
	for _, tc := range irtest.ContractCases() {
		t.Run(tc.Name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() { _ = b.Cleanup(ctx) })
			check := func(what string, err error) {
				t.Helper()
				switch {
				case tc.Want == "" && err != nil:
					t.Errorf("%s: rejected a case the validator accepts: %v", what, err)
				case tc.Want != "" && err == nil:
					t.Errorf("%s: accepted a case the validator rejects (%s)", what, tc.Want)
				case tc.Want != "" && !errors.Is(err, ir.ErrInvalid):
					t.Errorf("%s: error does not wrap ir.ErrInvalid: %v", what, err)
				}
			}
			if tc.Delta == nil {
				_, err := b.Sync(ctx, tc.Snapshot)
				check("Sync", err)
				return
			}
			if _, err := b.Sync(ctx, tc.Snapshot); err != nil {
				t.Fatalf("Sync of the valid base: %v", err)
			}
			err := b.Apply(ctx, tc.Delta)
			check("Apply", err)
			if err == nil {
				return
			}
			empty := &ir.Delta{Base: tc.Snapshot.Generation, Generation: tc.Snapshot.Generation + 1}
			if err := b.Apply(ctx, empty); err != nil {
				t.Errorf("after a rejected Apply, an empty delta from the base fails: %v", err)
			}
		})
	}
}
