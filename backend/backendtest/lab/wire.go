package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Wiring connects a pod's network namespace to its node in place of the
// lab's routed veth: the real CNI plugins, for instance, run as a container
// runtime runs them (ADD, then DEL). Set it in PodSpec.Wiring.
//
// The lab creates the pod's namespace (lo up, the lab's sysctls, nothing
// else), calls Wire with it and keeps the addresses Wire returns as the
// pod's, checked as PodSpec.IPs are (unicast, not the lab's own, not in use).
// The lab adds no route for a wired pod, on either node: the Wiring, or
// whoever set up the nodes, routes its addresses (per-node pod subnets
// routed between the nodes, as flannel's host-gw backend does).
//
// Unwire undoes Wire: RemovePod and Close call it before they release the
// namespace, and AddPod calls it when Wire fails or returns addresses the
// lab refuses (a runtime deletes after a failed add too, so Unwire must
// accept a partly done or absent Wire). Both run with the lab's lock held:
// they must not call the Lab's methods. Unwire gets no context: it bounds
// itself.
type Wiring interface {
	// Wire connects the namespace ns of pod (its PodSpec.Name) to the node
	// and returns the addresses the pod got, at least one.
	Wire(ctx context.Context, pod string, ns netns.NsHandle) ([]netip.Addr, error)
	// Unwire removes what Wire made for pod.
	Unwire(pod string, ns netns.NsHandle) error
}

// InNamespace runs fn on an OS thread switched into the network namespace
// ns, and switches the thread back before the Go runtime uses it for
// anything else (a thread that cannot be switched back is discarded).
// Sockets fn creates stay in ns; processes fn starts (os/exec) start in ns,
// since a child inherits its parent thread's namespaces.
func InNamespace(ns netns.NsHandle, fn func() error) error { return inNS(ns, fn) }

// wire creates a pod's namespace and has p.Wiring connect it. On error
// nothing of the pod remains: Unwire has been called and the namespace is
// released.
func (l *Lab) wire(ctx context.Context, p PodSpec) (_ *endpoint, err error) {
	ns, err := newNS(baseSysctls)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{kind: kindPod, name: p.Name, node: p.Node, ns: ns}
	defer func() {
		if err != nil {
			err = errors.Join(err, ep.unwire(), ep.shutdown())
		}
	}()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	if err := linkUp(h, "lo"); err != nil {
		return nil, err
	}
	ep.wiring = p.Wiring
	ips, err := p.Wiring.Wire(ctx, p.Name, ns)
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	if ep.ips, err = l.checkIPs(ips); err != nil {
		return nil, fmt.Errorf("wired addresses: %w", err)
	}
	for _, ip := range ep.ips {
		if err := waitLocal(h, ip); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

// unwire calls the Wiring of a wired pod, once; nil for anything else.
func (ep *endpoint) unwire() error {
	w := ep.wiring
	if w == nil {
		return nil
	}
	ep.wiring = nil
	if err := w.Unwire(ep.name, ep.ns); err != nil {
		return fmt.Errorf("unwire %s: %w", ep.name, err)
	}
	return nil
}
