package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend/bridgenf"
)

// --bridge-netfilter values.
const (
	// bridgeCheck reports a node where bridged pod traffic bypasses the
	// packet filter (not ready, log, Event, metric) and changes nothing.
	bridgeCheck = "check"
	// bridgeEnable also turns br_netfilter on in the agent's namespace
	// whenever it finds it off.
	bridgeEnable = "enable"
)

// Defaults of the bridge check.
const (
	bridgeCheckPeriod = 10 * time.Second
	// bridgeLogEvery is the least time between two "still cannot enforce"
	// lines.
	bridgeLogEvery = 5 * time.Minute
)

// Event reasons on the agent's Node.
const (
	eventBridgeBypass  = "BridgedTrafficUnfiltered"
	eventBridgeOK      = "BridgedTrafficFiltered"
	eventBridgeEnabled = "BridgeNetfilterEnabled"
)

// eventer is what the bridge check needs of an EventRecorder.
type eventer interface {
	Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// bridgeWatch checks, at start and then every period, that traffic between
// pods on a bridge of the enforced namespace reaches the packet filter
// (bridgenf.Check). While it does not, the agent is not ready (/readyz
// says why), palisade_bridge_netfilter_ok is 0, a line is logged when it
// starts and then at most once per logEvery, and a Warning Event is raised
// on the agent's Node when it starts (a Normal one when it ends). With
// enable set (--bridge-netfilter=enable) the watch turns br_netfilter on
// instead, logs it and raises an Event, and checks again.
type bridgeWatch struct {
	check    func() (bridgenf.Status, error)
	enable   func() error // nil: report only
	log      klog.Logger
	ok       gauge
	events   eventer
	node     *corev1.ObjectReference
	logEvery time.Duration

	mu     sync.Mutex
	reason string // why bridged traffic is not filtered; "" when it is
	// since is when the current failure was first seen, logged when it
	// was last logged.
	since, logged time.Time
}

// newBridgeWatch builds the watch for --netns (the agent's own namespace
// when unset) and registers palisade_bridge_netfilter_ok on reg. The
// returned function closes the namespace file.
func newBridgeWatch(o *options, reg prometheus.Registerer, events eventer, log klog.Logger) (*bridgeWatch, func(), error) {
	cfg := bridgenf.Config{}
	closeNS := func() {}
	if o.netns != "" {
		f, err := os.Open(o.netns)
		if err != nil {
			return nil, nil, fmt.Errorf("--netns: %w", err)
		}
		cfg.NetNS = int(f.Fd())
		closeNS = func() { _ = f.Close() }
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Name: "bridge_netfilter_ok",
		Help: "1 when traffic between pods on a bridge of the node reaches the packet filter (no bridge with ports, or br_netfilter on), 0 when it bypasses it (the agent is then not ready).",
	})
	if err := reg.Register(g); err != nil {
		closeNS()
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	w := &bridgeWatch{
		check:    func() (bridgenf.Status, error) { return bridgenf.Check(cfg) },
		log:      log,
		ok:       g,
		events:   events,
		node:     nodeRef(o.nodeName),
		logEvery: bridgeLogEvery,
	}
	if o.bridgeNetfilter == bridgeEnable {
		w.enable = func() error { return bridgenf.Enable(cfg) }
	}
	return w, closeNS, nil
}

func nodeRef(name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: name, UID: types.UID(name)}
}

// run checks every period until ctx is done (the caller checks once at
// start).
func (w *bridgeWatch) run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.observe(now)
		}
	}
}

// observe runs one check at now and records its outcome.
func (w *bridgeWatch) observe(now time.Time) {
	reason := w.find()
	if reason != "" && w.enable != nil {
		if err := w.enable(); err != nil {
			reason = fmt.Sprintf("%s; enabling br_netfilter failed: %v", reason, err)
		} else {
			w.log.Info("Turned br_netfilter on so that bridged pod traffic reaches the packet filter (--bridge-netfilter=enable)", "was", reason)
			w.events.Eventf(w.node, corev1.EventTypeNormal, eventBridgeEnabled, "turned br_netfilter on: %s", reason)
			reason = w.find()
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	was := w.reason
	w.reason = reason
	if reason == "" {
		w.ok.Set(1)
		if was != "" {
			w.log.Info("Bridged pod traffic reaches the packet filter again", "unfilteredFor", now.Sub(w.since).Round(time.Second))
			w.events.Eventf(w.node, corev1.EventTypeNormal, eventBridgeOK, "bridged pod traffic reaches the packet filter again")
			w.since = time.Time{}
		}
		return
	}
	w.ok.Set(0)
	switch {
	case was == "" || was != reason:
		if was == "" {
			w.since = now
		}
		w.logged = now
		w.log.Error(nil, "Cannot enforce policy for bridged pods; not ready", "reason", reason)
		w.events.Eventf(w.node, corev1.EventTypeWarning, eventBridgeBypass, "%s", reason)
	case now.Sub(w.logged) >= w.logEvery:
		w.logged = now
		w.log.Error(nil, "Still cannot enforce policy for bridged pods; not ready", "reason", reason, "for", now.Sub(w.since).Round(time.Second))
	}
}

// find runs the check and returns why bridged traffic is unfiltered, or "".
// A check that fails counts as unfiltered: nothing says it is filtered.
func (w *bridgeWatch) find() string {
	st, err := w.check()
	if err != nil {
		return fmt.Sprintf("cannot check whether bridged pod traffic reaches the packet filter: %v", err)
	}
	return st.Reason()
}

// err is nil when bridged traffic reaches the packet filter, else why not.
func (w *bridgeWatch) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason == "" {
		return nil
	}
	return errors.New(w.reason)
}
