package verdictlog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
)

// MaxPrefix is the longest NFLOG prefix the kernel keeps, without its NUL.
const MaxPrefix = 63

// Ref is what the NFLOG prefix of a logging rule says: the verdict, the
// direction checked, and the rule (a rule list and the index of the rule in
// its source object), or the end of an isolated NetworkPolicy tier.
type Ref struct {
	Allow     bool
	Direction ir.Direction
	// List is ListRef of the rule list's ID; empty for the isolated default.
	List string
	// Rule is the rule's ir.Rule.Index; -1 for the isolated default.
	Rule int
}

// Isolated reports whether r is the NetworkPolicy tier's default deny.
func (r Ref) Isolated() bool { return r.List == "" }

// ListRef is the compact reference to a rule list in a prefix: 64 bits of
// the SHA-256 of its ID, in hex (IDs may be long and hold any character).
func ListRef(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

// RulePrefix is the prefix of the rule of list (its ID) with index idx for
// direction dir: "pal:d:i:<ListRef>:<idx>" ("a" for allow, "e" for egress).
// It is at most 43 bytes.
func RulePrefix(allow bool, dir ir.Direction, list string, idx int) string {
	return head(allow, dir) + ListRef(list) + ":" + strconv.Itoa(idx)
}

// IsolatedPrefix is the prefix of the default deny at the end of an
// isolated NetworkPolicy tier: "pal:d:i::isolated".
func IsolatedPrefix(dir ir.Direction) string { return head(false, dir) + ":" + RuleIsolated }

func head(allow bool, dir ir.Direction) string {
	v, d := "d", "i"
	if allow {
		v = "a"
	}
	if dir == ir.Egress {
		d = "e"
	}
	return "pal:" + v + ":" + d + ":"
}

// ErrNotOurs is returned by ParsePrefix for a prefix that is not one of
// ours (another component may log to the same group).
var ErrNotOurs = errors.New("verdictlog: not a palisade prefix")

// ParsePrefix reads a prefix written by RulePrefix or IsolatedPrefix. A
// trailing NUL is ignored. Anything else, the empty prefix included, is an
// error wrapping ErrNotOurs.
func ParsePrefix(s string) (Ref, error) {
	s = strings.TrimRight(s, "\x00")
	parts := strings.Split(s, ":")
	if len(parts) != 5 || parts[0] != "pal" {
		return Ref{}, fmt.Errorf("%w: %q", ErrNotOurs, s)
	}
	var r Ref
	switch parts[1] {
	case "a":
		r.Allow = true
	case "d":
	default:
		return Ref{}, fmt.Errorf("%w: %q: verdict %q", ErrNotOurs, s, parts[1])
	}
	switch parts[2] {
	case "i":
		r.Direction = ir.Ingress
	case "e":
		r.Direction = ir.Egress
	default:
		return Ref{}, fmt.Errorf("%w: %q: direction %q", ErrNotOurs, s, parts[2])
	}
	if parts[3] == "" {
		if r.Allow || parts[4] != RuleIsolated {
			return Ref{}, fmt.Errorf("%w: %q: no rule list", ErrNotOurs, s)
		}
		r.Rule = -1
		return r, nil
	}
	if len(parts[3]) != 16 || strings.Trim(parts[3], "0123456789abcdef") != "" {
		return Ref{}, fmt.Errorf("%w: %q: rule list %q", ErrNotOurs, s, parts[3])
	}
	r.List = parts[3]
	idx, err := strconv.Atoi(parts[4])
	if err != nil || idx < 0 || strconv.Itoa(idx) != parts[4] {
		return Ref{}, fmt.Errorf("%w: %q: rule %q", ErrNotOurs, s, parts[4])
	}
	r.Rule = idx
	return r, nil
}

// DefaultRate is Logging.Rate when zero: log records per second.
const DefaultRate = 100

// MaxRate is the largest Logging.Rate: what iptables' hashlimit accepts.
const MaxRate = 1_000_000

// Logging says what a kernel backend logs through NFLOG. The zero value
// logs nothing.
type Logging struct {
	// Enabled turns the log on: every denied new connection (the Deny rule,
	// or the end of an isolated NetworkPolicy tier) is logged.
	Enabled bool
	// Group is the NFLOG group the records go to (0 to 65535).
	Group uint16
	// Rate is the budget in log records per second of each logging rule,
	// enforced by the kernel (burst: as many); DefaultRate when 0. Packets
	// past the budget are judged as usual, only not logged.
	Rate uint32
	// Allowed logs allowed new connections too, at the Allow rule that
	// accepted them, for every rule list. Without it, only the lists marked
	// ir.RuleList.LogAllowed log their Allow rules.
	Allowed bool
}

// Validate reports a Logging no backend can program: a Rate above MaxRate.
func (l Logging) Validate() error {
	if l.Rate > MaxRate {
		return fmt.Errorf("verdictlog: Logging.Rate %d: at most %d records per second", l.Rate, MaxRate)
	}
	return nil
}

// RateOrDefault is l.Rate, or DefaultRate when that is 0.
func (l Logging) RateOrDefault() uint32 {
	if l.Rate == 0 {
		return DefaultRate
	}
	return l.Rate
}

// LogsAllow reports whether the Allow rules of rl are logged.
func (l Logging) LogsAllow(rl *ir.RuleList) bool { return l.Enabled && (l.Allowed || rl.LogAllowed) }
