package backend

import "context"

// Verifier is an optional interface of a Backend that can read the packet
// filter back. Both methods go through the backend's own kernel connection
// (no second connection is needed), change nothing, and may be called at
// any time, concurrently with the other methods. Discover it with a type
// assertion on the interface:
//
//	if v, ok := be.(backend.Verifier); ok { ... }
//
// backend/nftables and backend/iptables implement it; backend/memory does
// not (it has no kernel to drift from).
type Verifier interface {
	// Installed reports whether any object the backend creates (its table,
	// its chains or sets) exists in the packet filter: true after a Sync by
	// this or a previous process, false on a node it never programmed or
	// after Cleanup.
	Installed(ctx context.Context) (bool, error)
	// Drift lists, one line each, what differs between the packet filter
	// and the state of the backend's last successful Sync or Apply: empty
	// when every object of ours is in place. It fails with ErrNotSynced
	// before the first Sync and ErrDirty after a failed change (nothing
	// known to compare with); the next Sync repairs what it lists.
	Drift(ctx context.Context) ([]string, error)
}
