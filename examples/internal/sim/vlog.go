package sim

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// LabLogging is what the lab's nodes log with --log-verdicts: every denied
// and every allowed new connection, to NFLOG group 100, with a budget far above
// what a flow file's probes send, so that no probe's record is held back.
var LabLogging = verdictlog.Logging{Enabled: true, Group: 100, Rate: 100000, Allowed: true}

// VerdictLogs reads the verdict log of every lab node and tells, for each
// probe, what the kernel logged for its packets.
type VerdictLogs struct {
	// Wait bounds how long Annotate waits for the record of a denied probe
	// (records come within about 10 ms; the bound is for a loaded machine);
	// 3s when 0.
	Wait time.Duration

	mu     sync.Mutex
	pods   map[netip.Addr]string
	events map[probeKey][]verdictlog.Event
	notify chan struct{}

	readers []*verdictlog.Reader
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	errs    []error
}

type probeKey struct {
	proto    uint8
	src, dst netip.AddrPort
}

// NewVerdictLogs returns an empty reader set; AddNode adds a node.
func NewVerdictLogs() *VerdictLogs {
	return &VerdictLogs{pods: map[netip.Addr]string{}, events: map[probeKey][]verdictlog.Event{}, notify: make(chan struct{}, 1)}
}

// AddNode wraps node i's backend so that its rule lists are known, and
// reads the verdict log of its namespace ns. Close stops the readers.
func (v *VerdictLogs) AddNode(ctx context.Context, i int, ns int, be backend.Backend) (backend.Backend, error) {
	cat := verdictlog.NewCatalog(v.podName)
	rd, err := verdictlog.Open(verdictlog.Config{NetNS: ns, Group: LabLogging.Group, Node: fmt.Sprintf("node-%d", i), Resolver: cat})
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	if v.cancel == nil {
		ctx, v.cancel = context.WithCancel(ctx)
	}
	v.readers = append(v.readers, rd)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		if err := rd.Run(ctx, v.add); err != nil {
			v.mu.Lock()
			v.errs = append(v.errs, err)
			v.mu.Unlock()
		}
	}()
	return verdictlog.Track(be, cat), nil
}

// Close stops the readers and returns what stopped one early.
func (v *VerdictLogs) Close() error {
	if v.cancel != nil {
		v.cancel()
	}
	for _, rd := range v.readers {
		_ = rd.Close()
	}
	v.wg.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.errs) > 0 {
		return v.errs[0]
	}
	return nil
}

// SetPods names pod addresses (a step's pods) in the records.
func (v *VerdictLogs) SetPods(pods map[string]lab.PodSpec) {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.pods)
	for name, p := range pods {
		for _, ip := range p.IPs {
			v.pods[ip.Unmap()] = name
		}
	}
}

func (v *VerdictLogs) podName(a netip.Addr) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.pods[a]
	return n, ok
}

func (v *VerdictLogs) add(ev *verdictlog.Event) {
	p := ev.Packet
	k := probeKey{p.Proto, netip.AddrPortFrom(p.Src.Unmap(), p.SrcPort), netip.AddrPortFrom(p.Dst.Unmap(), p.DstPort)}
	v.mu.Lock()
	v.events[k] = append(v.events[k], *ev)
	v.mu.Unlock()
	select {
	case v.notify <- struct{}{}:
	default:
	}
}

// Annotate sets Logged and Policy of out[i] from the records of probe
// rs[i]'s packets: "deny" when any record denies (naming its policy),
// else "allow" when one allows (naming the ingress side's policy when both
// ends logged), and nothing when no record came. It waits, up to Wait, for
// a record of every probe that was not connected, then forgets every
// record so far. Records received before since (probes of earlier steps
// that used the same source port) are ignored.
func (v *VerdictLogs) Annotate(rs []lab.Result, out []Result, since time.Time) {
	wait := v.Wait
	if wait == 0 {
		wait = 3 * time.Second
	}
	keyOf := func(r lab.Result) probeKey {
		return probeKey{protoNumber(r.Probe.Protocol), r.Source, netip.AddrPortFrom(r.Probe.Dst.Unmap(), r.Probe.Port)}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		missing := 0
		for _, r := range rs {
			if !r.Connected && r.Source.Port() != 0 && !v.fresh(keyOf(r), since) {
				missing++
			}
		}
		v.mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-v.notify:
			continue
		case <-deadline.C:
		}
		break
	}
	// Records of allowed probes come as fast as those of denied ones; a
	// moment more for the last of them.
	time.Sleep(50 * time.Millisecond)
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, r := range rs {
		var allow, deny *verdictlog.Event
		evs := v.events[keyOf(r)]
		for j := range evs {
			ev := &evs[j]
			switch {
			case ev.Time.Before(since):
			case ev.Verdict == verdictlog.VerdictDeny && deny == nil:
				deny = ev
			case ev.Verdict == verdictlog.VerdictAllow && (allow == nil || ev.Ref.Direction == ir.Ingress):
				allow = ev
			}
		}
		switch {
		case deny != nil:
			out[i].Logged, out[i].Policy, out[i].Rule = deny.Verdict, deny.Policy, deny.Rule
		case allow != nil:
			out[i].Logged, out[i].Policy, out[i].Rule = allow.Verdict, allow.Policy, allow.Rule
		}
	}
	clear(v.events)
}

// fresh reports whether a record of k came at or after since.
func (v *VerdictLogs) fresh(k probeKey, since time.Time) bool {
	for _, ev := range v.events[k] {
		if !ev.Time.Before(since) {
			return true
		}
	}
	return false
}

func protoNumber(p lab.Protocol) uint8 {
	q, _ := ir.ParseProtocol(string(p))
	return uint8(q)
}
