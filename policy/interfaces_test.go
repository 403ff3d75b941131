package policy_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// ifaceTable is a Config.Interface whose answers a test changes.
type ifaceTable struct {
	mu sync.Mutex
	m  map[string]string
}

func (f *ifaceTable) set(pod, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[pod] = name
}

func (f *ifaceTable) lookup(pod string, _ []netip.Addr) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[pod]
}

func interfacesOf(s *ir.Snapshot) map[string]string {
	out := map[string]string{}
	for _, ep := range s.Endpoints {
		out[ep.ID] = ep.Interface
	}
	return out
}

func TestInterfaces(t *testing.T) {
	tbl := &ifaceTable{m: map[string]string{"x/a": "veth-a", "x/b": "veth-b", "x/c": "bad/name"}}
	e := policy.New(policy.Config{Interface: tbl.lookup})
	mem := memory.New(memory.Config{})
	sync := func() *ir.Snapshot {
		t.Helper()
		require.NoError(t, mem.Apply(context.Background(), e.Delta()), "every delta fits the IR contract")
		return mem.Snapshot()
	}
	for _, p := range []struct{ name, ip string }{{"a", "10.0.0.1"}, {"b", "10.0.0.2"}, {"c", "10.0.0.3"}, {"d", "10.0.0.4"}} {
		require.NoError(t, e.UpsertPod(pod("x", p.name, nil, p.ip)))
	}
	assert.Equal(t, map[string]string{"x/a": "veth-a", "x/b": "veth-b", "x/c": "", "x/d": ""}, interfacesOf(sync()))
	assert.Equal(t, []string{`pod x/c: interface: interface name "bad/name" holds '/': not checked`}, e.InterfaceProblems())

	// The discovery learns d's interface and c's real one; nothing changes
	// until the engine is asked again.
	tbl.set("x/d", "veth-d")
	tbl.set("x/c", "veth-c")
	assert.Equal(t, "", interfacesOf(sync())["x/d"])
	e.RefreshInterfaces("x/d")
	assert.Equal(t, map[string]string{"x/a": "veth-a", "x/b": "veth-b", "x/c": "", "x/d": "veth-d"}, interfacesOf(sync()))
	e.RefreshInterfaces()
	assert.Equal(t, "veth-c", interfacesOf(sync())["x/c"])
	assert.Empty(t, e.InterfaceProblems())

	// A name another pod holds is not used: the IR never has two
	// endpoints on one interface.
	tbl.set("x/b", "veth-a")
	e.RefreshInterfaces("x/b")
	got := interfacesOf(sync())
	assert.Equal(t, "veth-a", got["x/a"])
	assert.Equal(t, "", got["x/b"])
	assert.Equal(t, []string{`pod x/b: interface "veth-a" is also pod x/a's: not checked`}, e.InterfaceProblems())

	// b and c swap interfaces in one refresh: both get theirs.
	tbl.set("x/b", "veth-c")
	tbl.set("x/c", "veth-b")
	e.RefreshInterfaces("x/b", "x/c")
	got = interfacesOf(sync())
	assert.Equal(t, "veth-c", got["x/b"])
	assert.Equal(t, "veth-b", got["x/c"])
	tbl.set("x/b", "veth-a")
	e.RefreshInterfaces("x/b", "x/c")
	sync()

	// a goes: its interface is free for b at the next refresh.
	e.DeletePod("x", "a")
	e.RefreshInterfaces()
	got = interfacesOf(sync())
	assert.Equal(t, "veth-a", got["x/b"])
	assert.Empty(t, e.InterfaceProblems())
	assert.Equal(t, e.Snapshot().Endpoints, mem.Snapshot().Endpoints, "the deltas add up to the snapshot")
}
