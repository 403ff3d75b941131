package iptables

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/palisade-net/palisade/policy/ir"
)

// Render returns what a first Sync of snap would send to a node that has no
// rules of ours yet: the ipset and iptables-restore inputs, in order, each
// under a "# command" line. It runs nothing: the commands go to a recorder
// that answers every read-back with an empty table.
func Render(snap *ir.Snapshot) (string, error) {
	rec := &recorder{}
	b, err := New(Config{Runner: rec, Mode: ModeNFT})
	if err != nil {
		return "", err
	}
	defer b.Close()
	if _, err := b.Sync(context.Background(), snap); err != nil {
		return "", err
	}
	var w strings.Builder
	for _, c := range rec.writes {
		fmt.Fprintf(&w, "# %s %s\n%s", c.name, strings.Join(c.args, " "), c.stdin)
		if !strings.HasSuffix(c.stdin, "\n") {
			w.WriteString("\n")
		}
	}
	return w.String(), nil
}

// recorder is a Runner that keeps the commands that write and answers the
// others (read-backs) with nothing.
type recorder struct {
	mu     sync.Mutex
	writes []recorded
}

type recorded struct {
	name  string
	args  []string
	stdin string
}

func (r *recorder) Run(_ context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	read := strings.HasSuffix(name, "-save") || (name == "ipset" && (len(args) == 0 || args[0] != "restore"))
	if read {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, recorded{name, args, string(stdin)})
	// The IPv4 and IPv6 restores run side by side: keep IPv4 first.
	if n := len(r.writes); n > 1 && strings.HasPrefix(r.writes[n-2].name, "ip6tables") && strings.HasPrefix(name, "iptables") {
		r.writes[n-2], r.writes[n-1] = r.writes[n-1], r.writes[n-2]
	}
	return nil, nil
}
