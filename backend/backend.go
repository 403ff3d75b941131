// Package backend defines the interface between Palisade's policy engine and
// a packet filter. A Backend receives the IR (package policy/ir) and programs
// it; it never sees Kubernetes objects or selectors.
//
// Implementations in this module: backend/memory (an in-memory model and the
// reference evaluator), backend/nftables and backend/iptables. Package
// backend/backendtest holds a conformance suite any implementation can run.
package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisade-net/palisade/policy/ir"
)

// Backend programs the IR into a packet filter. Calls are made from one
// goroutine at a time.
type Backend interface {
	// Sync makes the programmed state equal snap: it creates what is missing,
	// replaces what differs (drift) and removes what snap no longer holds. It
	// is idempotent, never opens traffic part-way (one atomic batch where the
	// packet filter allows), and reports what it had to change.
	Sync(ctx context.Context, snap *ir.Snapshot) (SyncReport, error)
	// Apply applies a delta to the state of the last successful Sync or
	// Apply. It fails, changing nothing, when d.Base is not the generation the
	// backend holds; the caller then falls back to Sync.
	Apply(ctx context.Context, d *ir.Delta) error
	// Cleanup removes everything the backend created. It succeeds when there
	// is nothing to remove.
	Cleanup(ctx context.Context) error
}

// SyncReport says what a Sync changed.
type SyncReport struct {
	// Generation is the generation now programmed.
	Generation uint64
	// Changes counts the objects (chains, rules, sets, elements, map
	// entries) created, replaced or deleted. Zero when the packet filter
	// already held exactly the snapshot.
	Changes int
	// Repairs describes, one line each, drift found and repaired: objects
	// that differed from what the backend had last programmed. It is empty
	// on the first Sync of a fresh backend and after a clean restart.
	Repairs []string
}

// Sentinel errors for the conditions a caller acts on. Backends wrap them
// (with %w) in errors that name the backend and the generations; test with
// errors.Is. Errors about the IR itself wrap ir.ErrInvalid (the IR breaks
// the contract: a bug in its producer) or ir.ErrStaleBase (the delta was
// made from another generation): both change nothing, and the caller
// falls back to Sync.
var (
	// ErrNotSynced: Apply before the first successful Sync (or after
	// Cleanup). Nothing was changed; Sync first.
	ErrNotSynced = errors.New("not synced")
	// ErrDirty: Apply after a change failed part-way since the last Sync;
	// the backend no longer knows what the packet filter holds. Nothing was
	// changed; Sync first.
	ErrDirty = errors.New("a change failed since the last Sync")
	// ErrStaleBase is ir.ErrStaleBase, for callers that import only this
	// package.
	ErrStaleBase = ir.ErrStaleBase
)

// NeedsSync reports whether err from Apply means that the caller must Sync
// before the next Apply can succeed: the backend was not synced, is dirty,
// or the delta does not fit what it holds (stale base or invalid IR).
func NeedsSync(err error) bool {
	return errors.Is(err, ErrNotSynced) || errors.Is(err, ErrDirty) ||
		errors.Is(err, ir.ErrStaleBase) || errors.Is(err, ir.ErrInvalid)
}

// CheckApply says why an Apply of d cannot start, or returns nil: d is nil
// (ir.ErrInvalid), ctx is done (its error is returned as it is), the backend
// has not synced yet (ErrNotSynced), a change failed since its last Sync
// (ErrDirty), or d does not start from the generation it holds
// (ir.ErrStaleBase). The errors other than ctx's begin with the backend's
// name. Backends that keep state call it first, under their lock; then they
// check that d fits what they hold (ir.CheckDelta).
func CheckApply(ctx context.Context, name string, d *ir.Delta, synced, dirty bool, held uint64) error {
	switch {
	case d == nil:
		return fmt.Errorf("%s: Apply: %w: nil delta", name, ir.ErrInvalid)
	case ctx.Err() != nil:
		return ctx.Err()
	case !synced:
		return fmt.Errorf("%s: Apply: %w: Sync first", name, ErrNotSynced)
	case dirty:
		return fmt.Errorf("%s: Apply: %w: Sync first", name, ErrDirty)
	case d.Base != held:
		return fmt.Errorf("%s: Apply: %w: delta %d→%d does not apply to generation %d", name, ir.ErrStaleBase, d.Base, d.Generation, held)
	}
	return nil
}

type changeTimeKey struct{}

// WithChangeTime returns a copy of ctx that carries t, the time of the
// oldest change (an API event, say) that the Sync or Apply made with it
// programs. Backends and decorators that measure how long a change took to
// reach the kernel read it with ChangeTime. A zero t leaves ctx as it is.
func WithChangeTime(ctx context.Context, t time.Time) context.Context {
	if t.IsZero() {
		return ctx
	}
	return context.WithValue(ctx, changeTimeKey{}, t)
}

// ChangeTime returns the time WithChangeTime put into ctx, and false when
// ctx carries none.
func ChangeTime(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(changeTimeKey{}).(time.Time)
	return t, ok
}
