package iptables

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/palisade-net/palisade/policy/ir"
)

const (
	// DefaultChainPrefix is the chain prefix when Config.ChainPrefix is empty.
	DefaultChainPrefix = "PALISADE"
	// DefaultSetPrefix is the ipset prefix when Config.SetPrefix is empty.
	DefaultSetPrefix = "pal"
	// DefaultAllowMark and DefaultPassMark are the packet mark bits used
	// inside one direction's check when Config leaves them zero.
	DefaultAllowMark uint32 = 0x1000000
	DefaultPassMark  uint32 = 0x2000000

	maxChainName = 28 // XT_EXTENSION_MAXNAMELEN - 1
	maxSetName   = 31 // IPSET_MAXNAMELEN - 1
	hashLen      = 12 // hex digits of SHA-256 in derived names
)

// names derives every chain and set name from the configured prefixes.
type names struct {
	chain, set string
	allow      uint32
	pass       uint32
}

func (n *names) fwd() string          { return n.chain + "-FWD" }
func (n *names) input() string        { return n.chain + "-INPUT" }
func (n *names) allowC() string       { return n.chain + "-ALLOW" }
func (n *names) passC() string        { return n.chain + "-PASS" }
func (n *names) isOurs(c string) bool { return strings.HasPrefix(c, n.chain+"-") }
func (n *names) ourSet(s string) bool { return strings.HasPrefix(s, n.set+"-") }

func (n *names) dirChain(dir ir.Direction) string {
	if dir == ir.Ingress {
		return n.chain + "-INGRESS"
	}
	return n.chain + "-EGRESS"
}

func hashHex(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:hashLen/2])
}

// listChain, tierChain and profileChain are hashed: IR IDs are too long for
// a chain name.
func (n *names) listChain(id string) string     { return n.chain + "-L" + hashHex("list "+id) }
func (n *names) tierChain(key string) string    { return n.chain + "-T" + hashHex(key) }
func (n *names) profileChain(key string) string { return n.chain + "-P" + hashHex(key) }
func (n *names) dispatchSet(fam ir.Family, key string) string {
	return fmt.Sprintf("%s-d%d-%s", n.set, fam, hashHex(key))
}

// addrSet and portSet keep the IR ID when the name fits, and fall back to a
// hash after a '.', which IDs never contain.
func (n *names) addrSet(fam ir.Family, id string) string { return n.idSet("a", fam, id) }
func (n *names) portSet(fam ir.Family, id string) string { return n.idSet("n", fam, id) }

func (n *names) idSet(kind string, fam ir.Family, id string) string {
	s := fmt.Sprintf("%s-%s%d-%s", n.set, kind, fam, id)
	if len(s) <= maxSetName {
		return s
	}
	return fmt.Sprintf("%s-%s%d.%s", n.set, kind, fam, hashHex(id))
}

func checkPrefixes(chain, set string) error {
	if l := len(chain) + 2 + hashLen; l > maxChainName {
		return fmt.Errorf("iptables: chain prefix %q is too long (derived names would be %d bytes, at most %d)", chain, l, maxChainName)
	}
	if l := len(set) + 4 + hashLen; l > maxSetName {
		return fmt.Errorf("iptables: set prefix %q is too long (derived names would be %d bytes, at most %d)", set, l, maxSetName)
	}
	for _, p := range []string{chain, set} {
		if p == "" || strings.ContainsAny(p, " \t\n\"'\\!") {
			return fmt.Errorf("iptables: invalid prefix %q", p)
		}
	}
	return nil
}

// quote renders a comment as iptables-save prints it: bare when it holds
// only letters, digits, '_' and '-', quoted otherwise. The text never holds
// quotes or backslashes (sanitize removes them).
func quote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return `"` + s + `"`
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// sanitize makes s safe for quote and for xt_comment (255 bytes).
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\'' || r == '\\':
			return '_'
		case r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
	if len(s) > 250 {
		s = s[:250]
	}
	return s
}

func comment(s string) string { return "-m comment --comment " + quote(sanitize(s)) }
