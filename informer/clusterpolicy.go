package informer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/policy"
)

// DefaultClusterPolicyPoll is the default period of the discovery check that
// notices the cluster-wide policy CRDs being installed or removed.
const DefaultClusterPolicyPoll = 10 * time.Second

// Reasons of the Warning Events recorded on cluster-wide policies that fail
// validation (the Event sits in the "default" namespace, as for every
// cluster-scoped object) or that cannot be read at all.
const (
	EventReasonInvalidAdminNetworkPolicy         = "InvalidAdminNetworkPolicy"
	EventReasonInvalidBaselineAdminNetworkPolicy = "InvalidBaselineAdminNetworkPolicy"
	EventReasonInvalidClusterNetworkPolicy       = "InvalidClusterNetworkPolicy"
)

// The cluster-wide policy resources the controller watches when served.
var (
	AdminNetworkPolicyResource         = v1alpha1.SchemeGroupVersion.WithResource("adminnetworkpolicies")
	BaselineAdminNetworkPolicyResource = v1alpha1.SchemeGroupVersion.WithResource("baselineadminnetworkpolicies")
	ClusterNetworkPolicyResource       = v1beta1.SchemeGroupVersion.WithResource("clusternetworkpolicies")
)

// clusterKind is one kind of cluster-wide policy: how to find it and how to
// feed it to the engine.
type clusterKind struct {
	kind   string
	reason string
	gvr    schema.GroupVersionResource
	// upsert converts and upserts. It returns notes on fields that could
	// not be kept as written, and an error: errConversion when the object
	// was not passed on, else the engine's *policy.ValidationError.
	upsert func(u *unstructured.Unstructured) ([]string, error)
	del    func(name string)
}

// clusterPolicies watches the cluster-wide policy kinds whose CRDs the API
// server serves, starting and stopping a dynamic informer per kind as
// discovery finds them or stops finding them.
type clusterPolicies struct {
	c         *Controller
	discovery ResourceLister
	kinds     []clusterKind
	poll      time.Duration

	mu      sync.Mutex
	running map[string]*kindInformer // by kind
}

// kindInformer is the running informer of one kind.
type kindInformer struct {
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced
	stop     context.CancelFunc
	done     chan struct{}
}

func newClusterPolicies(c *Controller) *clusterPolicies {
	e := c.cfg.Engine
	cp := &clusterPolicies{
		c:         c,
		discovery: c.cfg.Client.Discovery(),
		poll:      c.cfg.ClusterPolicyPoll,
		running:   map[string]*kindInformer{},
	}
	cp.kinds = []clusterKind{
		{
			kind: "AdminNetworkPolicy", reason: EventReasonInvalidAdminNetworkPolicy, gvr: AdminNetworkPolicyResource,
			upsert: func(u *unstructured.Unstructured) ([]string, error) {
				return convertThen(u, true, &v1alpha1.AdminNetworkPolicy{}, e.UpsertAdminNetworkPolicy)
			},
			del: e.DeleteAdminNetworkPolicy,
		},
		{
			kind: "BaselineAdminNetworkPolicy", reason: EventReasonInvalidBaselineAdminNetworkPolicy, gvr: BaselineAdminNetworkPolicyResource,
			upsert: func(u *unstructured.Unstructured) ([]string, error) {
				return convertThen(u, true, &v1alpha1.BaselineAdminNetworkPolicy{}, e.UpsertBaselineAdminNetworkPolicy)
			},
			del: e.DeleteBaselineAdminNetworkPolicy,
		},
		{
			kind: "ClusterNetworkPolicy", reason: EventReasonInvalidClusterNetworkPolicy, gvr: ClusterNetworkPolicyResource,
			upsert: func(u *unstructured.Unstructured) ([]string, error) {
				return convertThen(u, false, &v1beta1.ClusterNetworkPolicy{}, e.UpsertClusterNetworkPolicy)
			},
			del: e.DeleteClusterNetworkPolicy,
		},
	}
	return cp
}

// errConversion marks an object the typed API cannot represent.
var errConversion = errors.New("cannot be read as its typed API")

// ErrConversion is wrapped by the errors of DecodeAdminNetworkPolicy,
// DecodeBaselineAdminNetworkPolicy and DecodeClusterNetworkPolicy: the
// object cannot be represented in its typed API and must not be enforced
// as read.
var ErrConversion = errConversion

// DecodeAdminNetworkPolicy converts an AdminNetworkPolicy read through the
// dynamic client into the typed API the engine takes, exactly as the
// controller does: v0.1.x peers are rewritten first (see the package's
// conversion notes: sameLabels/notSameLabels are dropped from an Allow
// rule, widened to every namespace in a Deny rule, refused in a Pass
// rule), then the object is decoded strictly (an unknown field is an
// error). It returns notes on fields not kept as written, and an error
// wrapping ErrConversion that names the object when it cannot be read.
// u is never modified.
func DecodeAdminNetworkPolicy(u *unstructured.Unstructured) (*v1alpha1.AdminNetworkPolicy, []string, error) {
	return decode(u, true, &v1alpha1.AdminNetworkPolicy{})
}

// DecodeBaselineAdminNetworkPolicy is DecodeAdminNetworkPolicy for a
// BaselineAdminNetworkPolicy.
func DecodeBaselineAdminNetworkPolicy(u *unstructured.Unstructured) (*v1alpha1.BaselineAdminNetworkPolicy, []string, error) {
	return decode(u, true, &v1alpha1.BaselineAdminNetworkPolicy{})
}

// DecodeClusterNetworkPolicy decodes a ClusterNetworkPolicy strictly (its
// v1beta1 API has no older peer shape to rewrite); errors wrap
// ErrConversion and name the object.
func DecodeClusterNetworkPolicy(u *unstructured.Unstructured) (*v1beta1.ClusterNetworkPolicy, []string, error) {
	return decode(u, false, &v1beta1.ClusterNetworkPolicy{})
}

// decode converts u strictly into into, after rewriting v0.1.x peers when
// oldPeers is set (see upgradePeers).
func decode[T any](u *unstructured.Unstructured, oldPeers bool, into *T) (*T, []string, error) {
	obj := u.UnstructuredContent()
	var notes []string
	if oldPeers {
		var err error
		if obj, notes, err = upgradePeers(obj); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w: %w", u.GetKind(), u.GetName(), errConversion, err)
		}
	}
	if err := convertStrict(obj, into); err != nil {
		return nil, notes, fmt.Errorf("%s %s: %w: %w", u.GetKind(), u.GetName(), errConversion, err)
	}
	return into, notes, nil
}

// convertThen decodes u (see decode) and upserts it.
func convertThen[T any](u *unstructured.Unstructured, oldPeers bool, into *T, upsert func(*T) error) ([]string, error) {
	obj, notes, err := decode(u, oldPeers, into)
	if err != nil {
		return notes, err
	}
	return notes, upsert(obj)
}

// servedBy is served, returning ctx's error as soon as ctx ends:
// discovery takes no context and, against an API server that accepts
// connections and never answers, would hold the caller (and so a shutdown)
// for as long as the API server hangs. The abandoned call ends with its
// connection.
func (cp *clusterPolicies) servedBy(ctx context.Context) (map[string]bool, error) {
	type result struct {
		served map[string]bool
		err    error
	}
	done := make(chan result, 1)
	go func() {
		s, err := cp.served()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.served, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// served returns which kinds the API server serves now.
func (cp *clusterPolicies) served() (map[string]bool, error) {
	return ServedClusterPolicyKinds(cp.discovery)
}

// ClusterPolicyKinds are the cluster-wide policy kinds the controller
// watches when served, each with its resource.
var ClusterPolicyKinds = []struct {
	Kind     string
	Resource schema.GroupVersionResource
}{
	{"AdminNetworkPolicy", AdminNetworkPolicyResource},
	{"BaselineAdminNetworkPolicy", BaselineAdminNetworkPolicyResource},
	{"ClusterNetworkPolicy", ClusterNetworkPolicyResource},
}

// ResourceLister is what discovery of the cluster-wide policy kinds needs;
// discovery.DiscoveryInterface satisfies it.
type ResourceLister interface {
	ServerResourcesForGroupVersion(groupVersion string) (*metav1.APIResourceList, error)
}

// ServedClusterPolicyKinds returns the kinds of ClusterPolicyKinds that the
// API server serves now (an empty map when none: no CRD installed). An
// error means discovery could not tell (the API server is unreachable, or
// answered a group version with something other than "not found"); it
// names the group version.
func ServedClusterPolicyKinds(d ResourceLister) (map[string]bool, error) {
	out := map[string]bool{}
	lists := map[string]*metav1.APIResourceList{}
	for _, k := range ClusterPolicyKinds {
		gv := k.Resource.GroupVersion().String()
		list, seen := lists[gv]
		if !seen {
			var err error
			list, err = d.ServerResourcesForGroupVersion(gv)
			if apierrors.IsNotFound(err) {
				list, err = nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("discovery of %s: %w", gv, err)
			}
			lists[gv] = list
		}
		if list == nil {
			continue
		}
		for _, r := range list.APIResources {
			if r.Name == k.Resource.Resource {
				out[k.Kind] = true
			}
		}
	}
	return out, nil
}

// reconcile starts an informer for every served kind that has none and
// stops the informer of every kind no longer served, deleting its objects
// from the engine (the API server deletes a CRD's objects with it). It
// returns the HasSynced functions of the informers it started.
func (cp *clusterPolicies) reconcile(ctx context.Context, served map[string]bool) []cache.InformerSynced {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var started []cache.InformerSynced
	for _, k := range cp.kinds {
		ki, running := cp.running[k.kind]
		switch {
		case served[k.kind] && !running:
			ki, err := cp.start(ctx, k)
			if err != nil {
				cp.c.log.Error(err, "Cannot watch cluster-wide policies", "kind", k.kind)
				continue
			}
			cp.running[k.kind] = ki
			started = append(started, ki.synced)
			cp.c.log.Info("Watching cluster-wide policies: the API server serves them", "kind", k.kind, "resource", k.gvr.String())
		case !served[k.kind] && running:
			ki.stop()
			<-ki.done
			delete(cp.running, k.kind)
			at := cp.c.clock.Now()
			n := 0
			for _, obj := range ki.informer.GetStore().List() {
				if u, ok := obj.(*unstructured.Unstructured); ok {
					k.del(u.GetName())
					n++
				}
			}
			if n > 0 {
				cp.c.received(at)
			}
			cp.c.log.Info("Stopped watching cluster-wide policies: the API server no longer serves them", "kind", k.kind, "removed", n)
		}
	}
	return started
}

// start builds and runs the informer of one kind.
func (cp *clusterPolicies) start(ctx context.Context, k clusterKind) (*kindInformer, error) {
	inf := dynamicinformer.NewFilteredDynamicInformer(cp.c.cfg.Dynamic, k.gvr, metav1.NamespaceAll,
		cp.c.cfg.InformerResync, cache.Indexers{}, nil).Informer()
	upsert := func(u *unstructured.Unstructured) error { return cp.upsert(k, u) }
	del := func(_, name string) { k.del(name) }
	if err := inf.SetTransform(dropManagedFields); err != nil {
		return nil, err
	}
	reg, err := inf.AddEventHandler(handlers(cp.c, k.kind, upsert, del))
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithCancel(ctx)
	ki := &kindInformer{informer: inf, synced: reg.HasSynced, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(ki.done)
		inf.Run(ictx.Done())
	}()
	return ki, nil
}

// upsert feeds one object to the engine and reports what is wrong with it.
// An object that cannot be converted to its typed API is not passed on: the
// engine keeps the version it holds (none for a new object), so an update
// the controller cannot read never removes a Deny that was in force.
func (cp *clusterPolicies) upsert(k clusterKind, u *unstructured.Unstructured) error {
	notes, err := k.upsert(u)
	c := cp.c
	for _, n := range notes {
		c.log.Info("Cluster-wide policy field not enforced as written", "kind", k.kind, "name", u.GetName(), "note", n)
		if c.cfg.Recorder != nil {
			c.cfg.Recorder.Eventf(u, corev1.EventTypeWarning, k.reason, "%s %s: %s", k.kind, u.GetName(), n)
		}
	}
	if err == nil {
		return nil
	}
	c.incError(ErrorInvalidPolicy)
	if c.cfg.Recorder != nil {
		if errors.Is(err, errConversion) {
			c.cfg.Recorder.Eventf(u, corev1.EventTypeWarning, k.reason,
				"%s cannot be read; the version enforced before (if any) stays in force: %s", k.kind, err)
		} else {
			msg := err.Error()
			if ve, ok := policy.AsValidationError(err); ok {
				msg = ve.Errs.ToAggregate().Error()
			}
			c.cfg.Recorder.Eventf(u, corev1.EventTypeWarning, k.reason,
				"Invalid %s, enforced in its fail-closed form (invalid rules never allow): %s", k.kind, msg)
		}
	}
	return err
}

// initial discovers the served kinds until discovery answers (so that a
// Deny in force is never missing from the first Sync), starts their
// informers, and returns what Run must wait for. It returns false when ctx
// ends first.
func (cp *clusterPolicies) initial(ctx context.Context) ([]cache.InformerSynced, bool) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		served, err := cp.servedBy(ctx)
		if ctx.Err() != nil {
			return nil, false
		}
		if err == nil {
			if len(served) == 0 {
				cp.c.log.Info("The API server serves no cluster-wide policy CRD; enforcing without them until it does",
					"pollPeriod", cp.poll)
			}
			return cp.reconcile(ctx, served), true
		}
		cp.c.log.Info("Discovery of the cluster-wide policy CRDs failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-retry.C:
		}
	}
}

// pollLoop checks discovery every poll period until ctx ends. A failed
// discovery changes nothing.
func (cp *clusterPolicies) pollLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			cp.stopAll()
			return
		case <-cp.c.clock.After(cp.poll):
		}
		served, err := cp.servedBy(ctx)
		if ctx.Err() != nil {
			cp.stopAll()
			return
		}
		if err != nil {
			cp.c.log.V(2).Info("Discovery of the cluster-wide policy CRDs failed; keeping what is watched", "err", err)
			continue
		}
		cp.reconcile(ctx, served)
	}
}

func (cp *clusterPolicies) stopAll() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for kind, ki := range cp.running {
		ki.stop()
		<-ki.done
		delete(cp.running, kind)
	}
}

// watched returns the kinds being watched, for tests and logs.
func (cp *clusterPolicies) watched() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []string
	for _, k := range cp.kinds {
		if _, ok := cp.running[k.kind]; ok {
			out = append(out, k.kind)
		}
	}
	return out
}

// trimNode keeps what the engine reads of a Node (name, labels,
// addresses) and drops the rest (images, conditions, capacity), which
// would make the cache the largest part of the agent's memory. Like
// TrimPod, it is set on the controller's own factory only.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion,
			Labels: n.Labels, DeletionTimestamp: n.DeletionTimestamp,
		},
		Status: corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// startClusterPolicies, when cluster-wide policies are enabled, starts the
// informers of the kinds served now and the discovery poll that follows
// later changes. It returns what Run must wait for besides the factory's
// informers, and false when ctx ended first.
func (c *Controller) startClusterPolicies(ctx context.Context) ([]cache.InformerSynced, bool) {
	if c.cluster == nil {
		return nil, true
	}
	synced, ok := c.cluster.initial(ctx)
	if !ok {
		return nil, false
	}
	go c.cluster.pollLoop(ctx)
	return synced, true
}
