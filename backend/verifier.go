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

// DriftWatcher is an optional interface of a Backend that tells cheaply
// whether someone else may have changed the packet filter since the
// backend's last successful Sync or Apply (a firewall reload, `nft flush
// ruleset`, another agent's restore). A caller polls it at a short interval
// and runs a Sync when it answers true: the Sync reads the backend's
// objects back, repairs what differs and lists it in SyncReport.Repairs.
// Discover it with a type assertion, as Verifier. Changed goes through the
// backend's own kernel connection, changes nothing, and may be called at
// any time, concurrently with the other methods.
//
// backend/nftables and backend/iptables implement it; backend/memory does
// not.
type DriftWatcher interface {
	// Changed reports whether the packet filter may differ from what the
	// backend last programmed, because of a change it did not make. It is
	// false before the first Sync and after Cleanup (nothing to watch), and
	// true after a change of the backend's own failed part-way (ErrDirty:
	// only a Sync restores a known state). A true answer may be a false
	// alarm (another table of the namespace changed); it never misses a
	// change to the backend's own objects.
	Changed(ctx context.Context) (bool, error)
}

// As returns the first of be and the backends it wraps that implements T
// (an optional interface such as Verifier or DriftWatcher): a decorator
// that wraps a Backend exposes it with an `Unwrap() Backend` method, as
// backend/conntrack's Follower does, and As follows that chain. It returns
// false when none does, and for a nil be.
func As[T any](be Backend) (T, bool) {
	for be != nil {
		if t, ok := be.(T); ok {
			return t, true
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			break
		}
		be = u.Unwrap()
	}
	var zero T
	return zero, false
}
