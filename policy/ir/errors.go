package ir

import "errors"

// Sentinel errors. Errors returned by this package, and by the backends
// about the IR they are given, wrap one of these with the object and field
// at fault; test for them with errors.Is.
var (
	// ErrInvalid marks IR that breaks the contract (see Validate and
	// CheckDelta): a dangling reference, a duplicate ID, an empty port
	// range, a member in a non-canonical form, and so on. Nothing was
	// changed; the producer of the IR has a bug.
	ErrInvalid = errors.New("invalid IR")
	// ErrStaleBase marks a delta whose Base is not the generation held:
	// it was computed against another state. Nothing was changed; the
	// caller falls back to a full snapshot.
	ErrStaleBase = errors.New("delta from another generation")
)

// IsInvalid reports whether err wraps ErrInvalid.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
