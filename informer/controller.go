package informer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// Defaults of Config.
const (
	DefaultMinSyncInterval  = 10 * time.Millisecond
	DefaultResyncPeriod     = 5 * time.Minute
	DefaultMinRetryInterval = 100 * time.Millisecond
	DefaultMaxRetryInterval = 30 * time.Second
)

// Error kinds passed to Metrics.IncError.
const (
	// ErrorApply: Backend.Apply failed; a full Sync follows.
	ErrorApply = "apply"
	// ErrorSync: Backend.Sync failed; it is retried with backoff.
	ErrorSync = "sync"
	// ErrorInvalidPolicy: a NetworkPolicy failed validation; it is
	// enforced in its safe form (isolates, allows nothing).
	ErrorInvalidPolicy = "invalid_policy"
	// ErrorInvalidPod: a Pod has an unusable field (an IP that does not
	// parse); it is enforced without it.
	ErrorInvalidPod = "invalid_pod"
)

// ErrInvalidConfig is wrapped by the error New returns for a Config it
// cannot use; the message names every field at fault.
var ErrInvalidConfig = errors.New("invalid config")

// EventReasonInvalidNetworkPolicy is the reason of the Warning Event
// recorded on a NetworkPolicy that fails validation.
const EventReasonInvalidNetworkPolicy = "InvalidNetworkPolicy"

// EventRecorder records Kubernetes Events. client-go's record.EventRecorder
// satisfies it.
type EventRecorder interface {
	Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Metrics receives the controller's observations. Every method must be safe
// for concurrent use and cheap. Instruments implements it over counters,
// gauges and histograms; package informer/prommetrics over Prometheus.
type Metrics interface {
	// ObserveSync reports a successful full Sync and how long it took.
	ObserveSync(d time.Duration, report backend.SyncReport)
	// ObserveApply reports a successful Apply and how long it took.
	ObserveApply(d time.Duration)
	// ObserveLatency reports, once per successful run, the time from the
	// oldest event that run programmed to the end of the run.
	ObserveLatency(d time.Duration)
	// SetGeneration reports the generation now programmed.
	SetGeneration(g uint64)
	// SetCounts reports the size of the programmed state: local
	// endpoints, rule lists, and members of address and port sets.
	SetCounts(endpoints, ruleLists, setMembers int)
	// IncError counts a failure of the given kind (the Error* constants).
	IncError(kind string)
	// AddRepairs counts drift repaired by a Sync.
	AddRepairs(n int)
}

// Config configures a Controller. Client, Engine and Backend are required;
// every other field has a working zero value.
type Config struct {
	// Client reaches the API server. Required unless Factory is set.
	Client kubernetes.Interface
	// Factory, when set, is the caller's informer factory: the controller
	// registers its Namespace, Pod and NetworkPolicy informers on it
	// instead of keeping caches of its own, starts it in Run (starting an
	// informer twice is harmless) and never shuts it down. The controller
	// sets no transform on a caller's factory, since other users of its
	// caches may need what a transform drops; a caller whose other users
	// need no more than the engine installs TrimPod on the pod informer
	// itself, before starting the factory. When nil, the controller builds
	// its own factory from Client, with TrimPod on the pod cache.
	Factory informers.SharedInformerFactory
	// Engine receives every Namespace, Pod and NetworkPolicy (and, with
	// Dynamic, every Node and cluster-wide policy). Required.
	// The controller ends its deltas (Delta, Checkpoint); anyone may read
	// it (Snapshot, Problems) at any time.
	Engine policy.Engine
	// Backend is programmed with the Engine's output. Required. The
	// controller calls it from one goroutine.
	Backend backend.Backend

	// MinSyncInterval is the coalescing window: at most one run (one Apply,
	// or one Sync) per interval, whatever the rate of events.
	// DefaultMinSyncInterval when zero.
	MinSyncInterval time.Duration
	// ResyncPeriod is the period of the full Sync that repairs drift in the
	// packet filter. DefaultResyncPeriod when zero; negative disables it.
	ResyncPeriod time.Duration
	// MinRetryInterval and MaxRetryInterval bound the backoff between
	// retries of a failed Sync. Defaults when zero.
	MinRetryInterval, MaxRetryInterval time.Duration

	// DriftCheckInterval is the period at which the controller asks a
	// Backend that implements backend.DriftWatcher whether someone else
	// changed the packet filter; a change makes the next run a full Sync at
	// once, which repairs it. DefaultDriftCheckInterval when zero; negative
	// disables it (the periodic resync still repairs drift). A check that
	// takes long is spaced out to at least 20 times its duration, and a
	// check that found a change to at least 20 times the last full Sync's,
	// so that neither costs more than 5 % of the time (an iptables-save of
	// a large ruleset; a neighbour committing often, which moves nftables'
	// generation). The Backend,
	// or one it wraps (see backend.As), implements backend.DriftWatcher;
	// otherwise this is unused.
	DriftCheckInterval time.Duration

	// Recorder, when set, receives a Warning Event for every invalid
	// NetworkPolicy, and (with NodeName) for every Sync that repaired drift.
	Recorder EventRecorder
	// NodeName is the name of the Node the Backend enforces on: Events about
	// the node's packet filter (EventReasonDriftRepaired) are recorded on
	// it. When empty, those Events are not recorded (they are still logged).
	NodeName string
	// Metrics, when set, receives observations.
	Metrics Metrics
	// Clock drives the runner and the latency measurement; the real clock
	// when nil.
	Clock clock.Clock
	// Logger logs; klog's background logger when unset.
	Logger klog.Logger
	// Dynamic, when set, enables cluster-wide policy: the controller
	// watches AdminNetworkPolicies, BaselineAdminNetworkPolicies
	// (policy.networking.k8s.io/v1alpha1) and ClusterNetworkPolicies
	// (v1beta1) through it whenever the API server serves their CRDs (it
	// asks Client's discovery, so Client is then required), and Nodes (for
	// `nodes` peers) through the informer factory. When nil, none of these
	// is read (and no RBAC for them is needed).
	Dynamic dynamic.Interface
	// ClusterPolicyPoll is the period of the discovery check that notices
	// the cluster-wide policy CRDs being installed or removed while the
	// controller runs. DefaultClusterPolicyPoll when zero.
	ClusterPolicyPoll time.Duration

	// InformerResync is the resync period of the shared informers (replays
	// of the cache to the handlers, not a backend Sync). Zero disables it,
	// which is what the controller needs.
	InformerResync time.Duration
}

// Controller watches Namespaces, Pods and NetworkPolicies (and, with
// Config.Dynamic, Nodes and the cluster-wide policies), feeds them to the
// Engine, and programs the Backend: first a full Sync once every cache has
// synced, then coalesced Applies of the Engine's deltas, a full Sync when an
// Apply fails, and a periodic full Sync that repairs drift.
type Controller struct {
	cfg     Config
	log     klog.Logger
	clock   clock.Clock
	factory informers.SharedInformerFactory
	// ownFactory: the controller built the factory, and shuts it down.
	ownFactory bool
	synced     []cache.InformerSynced
	runner     *runner
	// cluster watches the cluster-wide policies; nil without Config.Dynamic.
	cluster *clusterPolicies
	// counts mirrors the size of the programmed state for Metrics; used
	// by the runner goroutine only.
	counts counts
	// shared is the addresses several pods report, as last logged; used by
	// the runner goroutine only.
	shared map[netip.Addr]policy.SharedAddress

	started atomic.Bool
	ready   atomic.Bool
	gen     atomic.Uint64

	mu sync.Mutex
	// pendingSince is when the oldest event not yet programmed was
	// received; zero when none is pending.
	pendingSince time.Time
	// needFull: the next run must be a full Sync (first run, failed
	// Apply, failed Sync, drift seen).
	needFull bool
	// driftSince is when the drift check first saw a change not yet
	// repaired; zero when none.
	driftSince time.Time
	// lastSync is how long the last successful full Sync took: the drift
	// check waits at least driftCheckShare times as long after a change it
	// reported, so that a neighbour committing often in the namespace (which
	// moves nftables' generation) cannot keep the node in full Syncs.
	lastSync time.Duration
}

// New builds a Controller and registers its informers. It starts nothing:
// see Run.
func New(cfg Config) (*Controller, error) {
	var errs []error
	if cfg.Client == nil && cfg.Factory == nil {
		errs = append(errs, errors.New("Client or Factory is required"))
	}
	if cfg.Dynamic != nil && cfg.Client == nil {
		errs = append(errs, errors.New("Dynamic needs Client too: discovery tells which cluster-wide policy kinds are served"))
	}
	if cfg.Engine == nil {
		errs = append(errs, errors.New("Engine is required"))
	}
	if cfg.Backend == nil {
		errs = append(errs, errors.New("Backend is required"))
	}
	if cfg.MinSyncInterval < 0 {
		errs = append(errs, fmt.Errorf("MinSyncInterval %v is negative", cfg.MinSyncInterval))
	}
	if cfg.ClusterPolicyPoll < 0 {
		errs = append(errs, fmt.Errorf("ClusterPolicyPoll %v is negative", cfg.ClusterPolicyPoll))
	}
	if cfg.MinRetryInterval < 0 || cfg.MaxRetryInterval < 0 {
		errs = append(errs, errors.New("retry intervals must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("informer: %w: %w", ErrInvalidConfig, err)
	}
	if cfg.MinSyncInterval == 0 {
		cfg.MinSyncInterval = DefaultMinSyncInterval
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = DefaultResyncPeriod
	}
	if cfg.MinRetryInterval == 0 {
		cfg.MinRetryInterval = DefaultMinRetryInterval
	}
	if cfg.MaxRetryInterval == 0 {
		cfg.MaxRetryInterval = DefaultMaxRetryInterval
	}
	cfg.MaxRetryInterval = max(cfg.MaxRetryInterval, cfg.MinRetryInterval)
	if cfg.ClusterPolicyPoll == 0 {
		cfg.ClusterPolicyPoll = DefaultClusterPolicyPoll
	}
	if cfg.DriftCheckInterval == 0 {
		cfg.DriftCheckInterval = DefaultDriftCheckInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger
	if log.GetSink() == nil {
		log = klog.Background().WithName("palisade-informer")
	}

	c := &Controller{
		cfg:      cfg,
		log:      log,
		clock:    cfg.Clock,
		factory:  cfg.Factory,
		needFull: true,
		counts:   newCounts(),
	}
	// Transforms go on a factory of our own only: the caches of a
	// caller's factory may serve others who read more than we do.
	podTransform, metaTransform := cache.TransformFunc(nil), cache.TransformFunc(nil)
	if c.factory == nil {
		c.factory = informers.NewSharedInformerFactory(cfg.Client, cfg.InformerResync)
		c.ownFactory = true
		podTransform, metaTransform = TrimPod, dropManagedFields
	}
	c.runner = newRunner(c.program, cfg.MinSyncInterval, cfg.ResyncPeriod,
		cfg.MinRetryInterval, cfg.MaxRetryInterval, cfg.Clock)

	// One line per kind of object; a later kind (cluster-wide policies)
	// adds its informer here.
	e := cfg.Engine
	err := errors.Join(
		watch(c, "Namespace", c.factory.Core().V1().Namespaces().Informer(), metaTransform,
			func(ns *corev1.Namespace) error { e.UpsertNamespace(ns); return nil },
			func(_, name string) { e.DeleteNamespace(name) }),
		watch(c, "Pod", c.factory.Core().V1().Pods().Informer(), podTransform,
			c.upsertPod, e.DeletePod),
		watch(c, "NetworkPolicy", c.factory.Networking().V1().NetworkPolicies().Informer(), metaTransform,
			c.upsertNetworkPolicy, e.DeleteNetworkPolicy),
	)
	if err == nil && cfg.Dynamic != nil {
		c.cluster = newClusterPolicies(c)
		nodeTransform := cache.TransformFunc(nil)
		if c.ownFactory {
			nodeTransform = trimNode
		}
		err = watch(c, "Node", c.factory.Core().V1().Nodes().Informer(), nodeTransform,
			func(n *corev1.Node) error { e.UpsertNode(n); return nil },
			func(_, name string) { e.DeleteNode(name) })
	}
	if err != nil {
		return nil, fmt.Errorf("informer: %w", err)
	}
	return c, nil
}

// Run starts the informers, waits for every cache to sync, programs the
// Backend with a full Sync, and then keeps it current until ctx is done. It
// returns nil when ctx ends, and an error when called twice. It never
// removes what the Backend programmed (see Backend.Cleanup).
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("informer: Run called twice")
	}
	c.factory.Start(ctx.Done())
	if c.ownFactory {
		defer c.factory.Shutdown()
	}

	clusterSynced, ok := c.startClusterPolicies(ctx)
	if !ok {
		return nil // ctx done
	}
	c.log.Info("Waiting for informer caches to sync")
	if !cache.WaitForCacheSync(ctx.Done(), append(c.synced, clusterSynced...)...) {
		return nil // ctx done
	}
	c.log.Info("Caches synced; programming the backend")
	if w, ok := backend.As[backend.DriftWatcher](c.cfg.Backend); ok && c.cfg.DriftCheckInterval > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			c.watchDrift(ctx, w, c.cfg.DriftCheckInterval)
		}()
	}
	c.runner.loop(ctx)
	return nil
}

// Refresh tells the controller that the Engine changed through a call of
// the caller's (such as Engine.RefreshInterfaces) rather than an event:
// the next run programs the change, as it does an event's.
func (c *Controller) Refresh() { c.received(time.Now()) }

// Ready reports whether the Backend holds a complete view: true once the
// first full Sync after the caches synced has succeeded.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Generation returns the Engine generation last programmed into the
// Backend; 0 before the first Sync.
func (c *Controller) Generation() uint64 { return c.gen.Load() }

// object is what watch needs of a Kubernetes object.
type object interface {
	runtime.Object
	GetNamespace() string
	GetName() string
	GetResourceVersion() string
}

// watch registers handlers that feed objects of type T to the engine, and
// adds the registration to what Run waits for. A non-nil transform is set
// on the informer.
func watch[T object](c *Controller, kind string, inf cache.SharedIndexInformer, transform cache.TransformFunc,
	upsert func(T) error, del func(namespace, name string)) error {
	if transform != nil {
		if err := inf.SetTransform(transform); err != nil {
			return fmt.Errorf("%s informer: %w", kind, err)
		}
	}
	reg, err := inf.AddEventHandler(handlers(c, kind, upsert, del))
	if err != nil {
		return fmt.Errorf("%s informer: %w", kind, err)
	}
	c.synced = append(c.synced, reg.HasSynced)
	return nil
}

// handlers returns the event handlers of one kind of object. They only read
// the objects they get (which belong to the informer's cache), and take a
// delete's namespace and name from the tombstone key when the final state
// is unknown.
func handlers[T object](c *Controller, kind string, upsert func(T) error, del func(namespace, name string)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				at := c.clock.Now()
				c.logUpsertError(upsert(o))
				c.received(at)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok := newObj.(T)
			if !ok {
				return
			}
			if old, ok := oldObj.(T); ok && o.GetResourceVersion() != "" &&
				old.GetResourceVersion() == o.GetResourceVersion() {
				return // an informer resync: nothing changed
			}
			at := c.clock.Now()
			c.logUpsertError(upsert(o))
			c.received(at)
		},
		DeleteFunc: func(obj any) {
			at := c.clock.Now()
			if o, ok := obj.(T); ok {
				del(o.GetNamespace(), o.GetName())
				c.received(at)
				return
			}
			tomb, ok := obj.(cache.DeletedFinalStateUnknown)
			if !ok {
				c.log.Error(nil, "Unexpected object in delete", "kind", kind, "type", fmt.Sprintf("%T", obj))
				return
			}
			ns, name, err := cache.SplitMetaNamespaceKey(tomb.Key)
			if err != nil {
				c.log.Error(err, "Bad tombstone key", "kind", kind, "key", tomb.Key)
				return
			}
			del(ns, name)
			c.received(at)
		},
	}
}

// dropManagedFields clears managed fields from objects entering the cache.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func (c *Controller) upsertPod(pod *corev1.Pod) error {
	if err := c.cfg.Engine.UpsertPod(pod); err != nil {
		c.incError(ErrorInvalidPod)
		return err
	}
	return nil
}

func (c *Controller) upsertNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	err := c.cfg.Engine.UpsertNetworkPolicy(np)
	if err == nil {
		return nil
	}
	c.incError(ErrorInvalidPolicy)
	if c.cfg.Recorder != nil {
		msg := err.Error()
		if ve, ok := policy.AsValidationError(err); ok {
			msg = ve.Errs.ToAggregate().Error()
		}
		c.cfg.Recorder.Eventf(np, corev1.EventTypeWarning, EventReasonInvalidNetworkPolicy,
			"Invalid NetworkPolicy, enforced as isolation with no allow rule: %s", msg)
	}
	return err
}

func (c *Controller) logUpsertError(err error) {
	if err == nil {
		return
	}
	if ve, ok := policy.AsValidationError(err); ok {
		c.log.Info("Invalid object, enforced in its safe form",
			"kind", ve.Kind, "namespace", ve.Namespace, "name", ve.Name, "errors", ve.Errs.ToAggregate().Error())
		return
	}
	c.log.Error(err, "Upsert failed")
}

// received marks work once an event received at time at has reached the
// engine. Marking only after the engine holds the change ensures that the
// run it triggers (or a later one) programs it.
func (c *Controller) received(at time.Time) {
	c.mu.Lock()
	if c.pendingSince.IsZero() || at.Before(c.pendingSince) {
		c.pendingSince = at
	}
	c.mu.Unlock()
	c.runner.Kick()
}

func (c *Controller) incError(kind string) {
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.IncError(kind)
	}
}

// program is one run of the runner: an Apply of the engine's delta, or a
// full Sync when full is set, when one is needed, or when the Apply failed.
func (c *Controller) program(ctx context.Context, periodic bool) error {
	c.mu.Lock()
	since := c.pendingSince
	c.pendingSince = time.Time{}
	full := c.needFull || periodic
	first := !c.ready.Load()
	c.mu.Unlock()

	// The backend (or a decorator of it) may measure from the change.
	err := c.programOnce(backend.WithChangeTime(ctx, since), full)
	end := c.clock.Now()
	if err == nil {
		c.reportShared()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// Nothing was programmed: the events stay pending.
		if !since.IsZero() && (c.pendingSince.IsZero() || since.Before(c.pendingSince)) {
			c.pendingSince = since
		}
		return err
	}
	// The first Sync carries the caches' initial lists, which are no
	// events; its duration is reported by ObserveSync.
	if !since.IsZero() && !first && c.cfg.Metrics != nil {
		c.cfg.Metrics.ObserveLatency(end.Sub(since))
	}
	return nil
}

// reportShared logs each address that several pods come to report (an
// address reused while the old pod's object still exists), with the pod
// the engine gives it to, and each such address that stops being shared:
// a pod whose address another pod owns is not enforced on that address,
// and this is where an operator learns why.
func (c *Controller) reportShared() {
	now := make(map[netip.Addr]policy.SharedAddress, len(c.shared))
	for _, sa := range c.cfg.Engine.SharedAddresses() {
		now[sa.Address] = sa
		if prev, ok := c.shared[sa.Address]; !ok || prev.Owner != sa.Owner || !slices.Equal(prev.Others, sa.Others) {
			c.log.Info("Pods report the same address; it is the owner's alone", "address", sa.Address, "owner", sa.Owner, "others", sa.Others)
		}
	}
	for ip, prev := range c.shared {
		if _, ok := now[ip]; !ok {
			c.log.Info("Address no longer shared", "address", ip, "owner", prev.Owner)
		}
	}
	c.shared = now
}

func (c *Controller) programOnce(ctx context.Context, full bool) error {
	m := c.cfg.Metrics
	if !full {
		d := c.cfg.Engine.Delta()
		if d.Empty() {
			return nil
		}
		start := c.clock.Now()
		err := c.cfg.Backend.Apply(ctx, d)
		if err == nil {
			c.gen.Store(d.Generation)
			c.counts.apply(d)
			if m != nil {
				m.ObserveApply(c.clock.Since(start))
				m.SetGeneration(d.Generation)
				m.SetCounts(c.counts.totals())
			}
			c.log.V(4).Info("Applied delta", "base", d.Base, "generation", d.Generation)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Info("Apply failed; falling back to a full Sync", "err", err, "base", d.Base, "generation", d.Generation)
		c.incError(ErrorApply)
	}

	c.mu.Lock()
	driftSince := c.driftSince
	c.driftSince = time.Time{}
	c.mu.Unlock()
	snap := c.cfg.Engine.Checkpoint()
	start := c.clock.Now()
	rep, err := c.cfg.Backend.Sync(ctx, snap)
	if err != nil {
		c.mu.Lock()
		c.needFull = true
		if !driftSince.IsZero() && (c.driftSince.IsZero() || driftSince.Before(c.driftSince)) {
			c.driftSince = driftSince
		}
		c.mu.Unlock()
		if ctx.Err() == nil {
			c.log.Error(err, "Sync failed; will retry", "generation", snap.Generation)
			c.incError(ErrorSync)
		}
		return err
	}
	took := c.clock.Since(start)
	c.gen.Store(rep.Generation)
	c.counts.reset(snap)
	c.mu.Lock()
	c.needFull = false
	c.lastSync = took
	c.mu.Unlock()
	if m != nil {
		m.ObserveSync(took, rep)
		m.SetGeneration(rep.Generation)
		m.SetCounts(c.counts.totals())
		if len(rep.Repairs) > 0 {
			m.AddRepairs(len(rep.Repairs))
		}
	}
	if len(rep.Repairs) > 0 {
		c.reportRepairs(rep, driftSince)
	} else {
		c.log.V(2).Info("Synced", "generation", rep.Generation, "changes", rep.Changes)
	}
	if !c.ready.Swap(true) {
		c.log.Info("First Sync done; ready", "generation", rep.Generation, "changes", rep.Changes)
	}
	return nil
}

// counts mirrors the size of the programmed state, so that Metrics can be
// told after an Apply without a Snapshot.
type counts struct {
	endpoints map[string]struct{}
	lists     map[string]struct{}
	members   map[string]int // by set ID; address sets and port sets
}

func newCounts() counts {
	return counts{endpoints: map[string]struct{}{}, lists: map[string]struct{}{}, members: map[string]int{}}
}

func (n *counts) reset(s *ir.Snapshot) {
	*n = newCounts()
	for _, e := range s.Endpoints {
		n.endpoints[e.ID] = struct{}{}
	}
	for _, l := range s.RuleLists {
		n.lists[l.ID] = struct{}{}
	}
	for _, a := range s.AddressSets {
		n.members["a/"+a.ID] = len(a.Members)
	}
	for _, p := range s.PortSets {
		n.members["p/"+p.ID] = len(p.Members)
	}
}

func (n *counts) apply(d *ir.Delta) {
	for _, e := range d.Endpoints {
		n.endpoints[e.ID] = struct{}{}
	}
	for _, id := range d.RemovedEndpoints {
		delete(n.endpoints, id)
	}
	for _, l := range d.RuleLists {
		n.lists[l.ID] = struct{}{}
	}
	for _, id := range d.RemovedRuleLists {
		delete(n.lists, id)
	}
	for _, a := range d.AddedAddressSets {
		n.members["a/"+a.ID] = len(a.Members)
	}
	for _, ch := range d.AddressSetChanges {
		n.members["a/"+ch.ID] += len(ch.Added) - len(ch.Removed)
	}
	for _, id := range d.RemovedAddressSets {
		delete(n.members, "a/"+id)
	}
	for _, p := range d.AddedPortSets {
		n.members["p/"+p.ID] = len(p.Members)
	}
	for _, ch := range d.PortSetChanges {
		n.members["p/"+ch.ID] += len(ch.Added) - len(ch.Removed)
	}
	for _, id := range d.RemovedPortSets {
		delete(n.members, "p/"+id)
	}
}

func (n *counts) totals() (endpoints, ruleLists, setMembers int) {
	for _, m := range n.members {
		setMembers += m
	}
	return len(n.endpoints), len(n.lists), setMembers
}
