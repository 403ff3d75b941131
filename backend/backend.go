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
