package informer

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/palisade-net/palisade/backend"
)

// DefaultDriftCheckInterval is the period of the drift check when
// Config.DriftCheckInterval is zero.
const DefaultDriftCheckInterval = 500 * time.Millisecond

// driftCheckShare bounds the drift check's share of the time: the wait
// after a check is at least this many times as long as the check took.
const driftCheckShare = 20

// EventReasonDriftRepaired is the reason of the Warning Event recorded on
// the Node (Config.NodeName) when a Sync repaired changes made to the packet
// filter by someone else.
const EventReasonDriftRepaired = "PacketFilterDriftRepaired"

// ErrorDriftCheck is the error kind passed to Metrics.IncError when the
// Backend's drift check (backend.DriftWatcher) fails.
const ErrorDriftCheck = "drift_check"

// maxRepairsInEvent bounds the repairs an Event lists by name; the count
// covers them all.
const maxRepairsInEvent = 10

// watchDrift asks w, interval after each answer, whether someone else changed the packet
// filter, and when so, makes the runner's next run a full Sync at once (the
// runner coalesces it with whatever else is pending). It returns when ctx
// is done.
func (c *Controller) watchDrift(ctx context.Context, w backend.DriftWatcher, interval time.Duration) {
	failing := false
	wait := interval
	for {
		t := c.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		start := c.clock.Now()
		changed, err := w.Changed(ctx)
		// A check that costs much (iptables-save of a large ruleset) is
		// spaced out so that it never takes more than 1/driftCheckShare of
		// the time; a cheap one (nftables' generation) runs every interval.
		// After a change, the wait also covers the full Sync it calls for.
		wait = max(interval, driftCheckShare*c.clock.Since(start))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.incError(ErrorDriftCheck)
			if !failing { // log the first failure of a run of them
				c.log.Error(err, "Drift check failed; the periodic resync still repairs drift")
			}
			failing = true
			continue
		}
		if failing {
			c.log.Info("Drift check works again")
			failing = false
		}
		if !changed {
			continue
		}
		now := c.clock.Now()
		c.mu.Lock()
		c.needFull = true
		if c.driftSince.IsZero() {
			c.driftSince = now
		}
		// The full Sync this asks for costs what the last one did.
		wait = max(wait, driftCheckShare*c.lastSync)
		c.mu.Unlock()
		c.log.V(2).Info("Packet filter changed by someone else; syncing")
		c.runner.Kick()
	}
}

// reportRepairs logs, and raises as an Event on the Node, the drift a
// successful Sync repaired. since is when the drift check first saw a
// change the Sync covers (zero when the Sync was not called for by it).
func (c *Controller) reportRepairs(rep backend.SyncReport, since time.Time) {
	if len(rep.Repairs) == 0 {
		return
	}
	kv := []any{"generation", rep.Generation, "repairs", len(rep.Repairs), "details", rep.Repairs}
	if !since.IsZero() {
		kv = append(kv, "sinceDetected", c.clock.Since(since))
	}
	c.log.Info("Sync repaired drift", kv...)
	if c.cfg.Recorder == nil || c.cfg.NodeName == "" {
		return
	}
	named := rep.Repairs
	more := ""
	if len(named) > maxRepairsInEvent {
		named = named[:maxRepairsInEvent]
		more = fmt.Sprintf("; and %d more", len(rep.Repairs)-maxRepairsInEvent)
	}
	// The kubelet's convention for Events about a Node: the UID is the
	// node's name.
	node := &corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: c.cfg.NodeName, UID: types.UID(c.cfg.NodeName)}
	c.cfg.Recorder.Eventf(node, corev1.EventTypeWarning, EventReasonDriftRepaired,
		"Repaired %d changes made to the packet filter by someone else: %s%s",
		len(rep.Repairs), strings.Join(named, "; "), more)
}
