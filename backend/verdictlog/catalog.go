package verdictlog

import (
	"context"
	"net/netip"
	"strconv"
	"sync"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy/ir"
)

// Resolver maps what the kernel logged back to names. Its methods may be
// called concurrently with updates of the view it holds.
type Resolver interface {
	// Decision names the rule of ref: its tier ("Admin", "NetworkPolicy",
	// "Baseline"), the deciding object ("Kind/ns/name") and the rule (its
	// name, else its index). ok is false when ref names a rule list the
	// resolver does not know.
	Decision(ref Ref) (tier, policy, rule string, ok bool)
	// Name returns "namespace/pod" for a pod's address; ok is false for any
	// other address.
	Name(a netip.Addr) (name string, ok bool)
}

// Catalog is a Resolver over the IR a backend was last given: Track keeps
// it current. Pods outside the IR's endpoints (pods of other nodes) are
// named by Pods. The zero value is not usable; use NewCatalog.
type Catalog struct {
	// Pods names addresses that are not a local endpoint's (pods of other
	// nodes), from the embedder's view of the cluster; nil names none.
	Pods func(netip.Addr) (string, bool)

	mu    sync.RWMutex
	lists map[string]*listEntry // ListRef → list
	eps   map[string][]netip.Addr
	addrs map[netip.Addr]string
}

type listEntry struct {
	id     string
	tier   ir.TierKind
	policy string
	rules  map[int]string // index → name ("" when unnamed)
}

// NewCatalog returns an empty catalog (it resolves nothing until Sync).
func NewCatalog(pods func(netip.Addr) (string, bool)) *Catalog {
	return &Catalog{Pods: pods, lists: map[string]*listEntry{}, eps: map[string][]netip.Addr{}, addrs: map[netip.Addr]string{}}
}

// Sync replaces the catalog's view with snap. A nil snap empties it.
func (c *Catalog) Sync(snap *ir.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.lists)
	clear(c.eps)
	clear(c.addrs)
	if snap == nil {
		return
	}
	c.apply(&ir.Delta{RuleLists: snap.RuleLists, Endpoints: snap.Endpoints})
}

// Apply brings the catalog's view forward by d. A nil d changes nothing.
func (c *Catalog) Apply(d *ir.Delta) {
	if d == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(d)
}

func (c *Catalog) apply(d *ir.Delta) {
	for i := range d.RuleLists {
		rl := &d.RuleLists[i]
		ref := ListRef(rl.ID)
		e := &listEntry{id: rl.ID, tier: kindTier(rl.Origin.Kind), policy: rl.Origin.String(), rules: make(map[int]string, len(rl.Rules))}
		if old := c.lists[ref]; old != nil && old.id == rl.ID {
			e.tier = old.tier // learnt from the endpoints' tiers
		}
		for _, r := range rl.Rules {
			e.rules[r.Index] = r.Name
		}
		c.lists[ref] = e
	}
	for _, id := range d.RemovedRuleLists {
		delete(c.lists, ListRef(id))
	}
	for _, id := range d.RemovedEndpoints {
		for _, a := range c.eps[id] {
			delete(c.addrs, a)
		}
		delete(c.eps, id)
	}
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		for _, a := range c.eps[ep.ID] {
			delete(c.addrs, a)
		}
		c.eps[ep.ID] = ep.IPs
		for _, a := range ep.IPs {
			c.addrs[a.Unmap()] = ep.ID
		}
		for _, tiers := range [][]ir.Tier{ep.Ingress, ep.Egress} {
			for _, t := range tiers {
				for _, id := range t.RuleLists {
					if e := c.lists[ListRef(id)]; e != nil {
						e.tier = t.Kind
					}
				}
			}
		}
	}
}

// kindTier is the tier of a list of an object of kind k, before an
// endpoint's tiers say it (a ClusterNetworkPolicy's tier is in its spec).
func kindTier(k string) ir.TierKind {
	switch k {
	case "NetworkPolicy":
		return ir.TierNetworkPolicy
	case "BaselineAdminNetworkPolicy":
		return ir.TierBaseline
	}
	return ir.TierAdmin
}

// Decision implements Resolver. The isolated default is tier
// NetworkPolicy, no policy, rule RuleIsolated.
func (c *Catalog) Decision(ref Ref) (tier, policy, rule string, ok bool) {
	if ref.Isolated() {
		return string(ir.TierNetworkPolicy), "", RuleIsolated, true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.lists[ref.List]
	if e == nil {
		return "", "", "", false
	}
	name, known := e.rules[ref.Rule]
	if !known {
		return "", "", "", false
	}
	if name == "" {
		name = strconv.Itoa(ref.Rule)
	}
	return string(e.tier), e.policy, name, true
}

// Name implements Resolver: a local endpoint's ID, else Pods.
func (c *Catalog) Name(a netip.Addr) (string, bool) {
	a = a.Unmap()
	c.mu.RLock()
	id, ok := c.addrs[a]
	c.mu.RUnlock()
	if ok {
		return id, true
	}
	if c.Pods != nil {
		return c.Pods(a)
	}
	return "", false
}

// Track returns be wrapped so that every successful Sync and Apply also
// updates c. The wrapper unwraps (backend.As) to be.
func Track(be backend.Backend, c *Catalog) backend.Backend { return &tracked{be: be, c: c} }

type tracked struct {
	be backend.Backend
	c  *Catalog
}

func (t *tracked) Unwrap() backend.Backend { return t.be }

func (t *tracked) Sync(ctx context.Context, snap *ir.Snapshot) (backend.SyncReport, error) {
	// The catalog learns the lists before the kernel can log them, and
	// keeps them when the Sync fails (the kernel may hold them).
	if snap != nil {
		t.c.Sync(snap)
	}
	return t.be.Sync(ctx, snap)
}

func (t *tracked) Apply(ctx context.Context, d *ir.Delta) error {
	if d != nil {
		t.c.addOnly(d)
	}
	err := t.be.Apply(ctx, d)
	if err == nil {
		t.c.Apply(d)
	}
	return err
}

func (t *tracked) Cleanup(ctx context.Context) error { return t.be.Cleanup(ctx) }

// addOnly applies what d adds or replaces, nothing it removes: the kernel
// may log a new list's rules as soon as the backend commits.
func (c *Catalog) addOnly(d *ir.Delta) {
	c.Apply(&ir.Delta{RuleLists: d.RuleLists, Endpoints: d.Endpoints})
}
