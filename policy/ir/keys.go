package ir

import (
	"strconv"
	"strings"
)

// ProfileKey is a canonical, unambiguous text for one direction's ordered
// tiers: endpoints with equal keys are enforced alike, so a backend can
// share one chain (a "profile") among them and name it by a hash of the key.
// Every token is length-prefixed, so no two inputs give the same key.
func ProfileKey(dir Direction, tiers []Tier) string {
	var b strings.Builder
	n := 32
	for _, t := range tiers {
		n += 16
		for _, id := range t.RuleLists {
			n += len(id) + 5
		}
	}
	b.Grow(n)
	b.WriteString("profile ")
	writeToken(&b, string(dir))
	for _, t := range tiers {
		b.WriteString(" [")
		writeToken(&b, string(t.Kind))
		for _, id := range t.RuleLists {
			b.WriteByte(' ')
			writeToken(&b, id)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// TierKey is the canonical text of one tier of several rule lists, for a
// backend that shares a chain per such tier.
func TierKey(kind TierKind, lists []string) string {
	var b strings.Builder
	b.WriteString("tier ")
	writeToken(&b, string(kind))
	for _, id := range lists {
		b.WriteByte(' ')
		writeToken(&b, id)
	}
	return b.String()
}

func writeToken(b *strings.Builder, tok string) {
	b.WriteString(strconv.Itoa(len(tok)))
	b.WriteByte(':')
	b.WriteString(tok)
}
