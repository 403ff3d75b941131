package policy

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidationError reports that an object failed validation. The engine still
// applies the object in its safe form: a NetworkPolicy that fails validation
// isolates the pods it selects (every pod of its namespace when its pod
// selector is the problem) and contributes no allow rule; a Pod with an
// unusable IP is applied without that IP. In a cluster-wide policy an
// invalid Allow/Accept rule matches nothing and an invalid Deny or Pass rule
// denies everything at its place; an error of the object itself (subject,
// priority, tier, name) leaves only its denials, first in its tier when the
// priority or tier is at fault. A cluster-wide policy with a `domainNames`
// peer is valid but reported (the peer is not supported and matches
// nothing).
type ValidationError struct {
	// Kind, Namespace and Name identify the object.
	Kind      string
	Namespace string
	Name      string
	// Errs lists every problem found, each with its field path.
	Errs field.ErrorList
}

// Error names the object and every field at fault.
func (e *ValidationError) Error() string {
	obj := e.Kind + " " + e.Name
	if e.Namespace != "" {
		obj = e.Kind + " " + e.Namespace + "/" + e.Name
	}
	return fmt.Sprintf("%s: %s", obj, e.Errs.ToAggregate().Error())
}

// Unwrap returns the individual field errors.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		out[i] = fe
	}
	return out
}

// AsValidationError reports whether err is or wraps a *ValidationError, and
// returns it.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}
