package iptables

import (
	"context"
	"strings"
	"sync"
)

// call is one command a fakeRunner saw.
type call struct {
	name  string
	args  []string
	stdin string
}

func (c call) String() string { return c.name + " " + strings.Join(c.args, " ") }

// fakeRunner records commands and answers the read-back commands from
// canned outputs (empty tables and no sets by default); fail makes the
// named command exit non-zero.
type fakeRunner struct {
	mu     sync.Mutex // the two restores run side by side
	calls  []call
	output map[string]string // command name → stdout
	fail   map[string]int    // command name → exit code
}

func (f *fakeRunner) Run(_ context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{name, args, string(stdin)})
	f.calls = ordered(f.calls)
	if code := f.fail[name]; code != 0 {
		return nil, &CommandError{Name: name, Args: args, ExitCode: code, Stderr: "fake failure"}
	}
	if name == "iptables" && len(args) == 1 && args[0] == "--version" {
		return []byte("iptables v1.8.9 (nf_tables)\n"), nil
	}
	if name == "ipset" && strings.Join(args, " ") == "list -n" {
		// The names of the sets the canned ipset save output creates.
		var names strings.Builder
		for _, l := range strings.Split(f.output[name], "\n") {
			if fs := strings.Fields(l); len(fs) > 1 && fs[0] == "create" {
				names.WriteString(fs[1] + "\n")
			}
		}
		return []byte(names.String()), nil
	}
	if strings.HasSuffix(name, "-save") && strings.Join(args, " ") == "-t raw" {
		// The raw table holds nothing of ours unless a test says so.
		return []byte(f.output[name+" -t raw"]), nil
	}
	return []byte(f.output[name]), nil
}

// writes returns the calls that change something (not reads).
func (f *fakeRunner) writes() []call {
	var out []call
	for _, c := range f.calls {
		if strings.HasSuffix(c.name, "-save") || (c.name == "ipset" && c.args[0] != "restore") || c.name == "iptables" {
			continue
		}
		out = append(out, c)
	}
	return out
}

// ordered puts the IPv4 restore before the IPv6 one when they ran side by
// side and the IPv6 one was first.
func ordered(cs []call) []call {
	for i := 1; i < len(cs); i++ {
		if strings.HasPrefix(cs[i-1].name, "ip6tables") && strings.HasSuffix(cs[i-1].name, "-restore") &&
			strings.HasPrefix(cs[i].name, "iptables") && strings.HasSuffix(cs[i].name, "-restore") {
			cs[i-1], cs[i] = cs[i], cs[i-1]
		}
	}
	return cs
}
