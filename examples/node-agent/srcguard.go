package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/policy/ir"
)

// Source validation: the agent tells the engine each local pod's interface
// on the node (policy.Config.Interface), and the backend drops what a pod
// sends from any address but its own. The interface must come from
// something the pod cannot influence:
//
//   - cni: the result cache the container runtime's libcni writes for every
//     CNI ADD (/var/lib/cni/results, one JSON file per attachment: the pod's
//     namespace and name in cniArgs, the interfaces created, the IPs
//     assigned). The host-side interface is the one without a sandbox that
//     is a veth in the node's namespace (the bridge plugin also lists the
//     bridge itself); the entry counts only when its IPs include every IP
//     the pod reports (a file left by an old sandbox does not).
//   - route: the node's host route (a /32 or /128) to each of the pod's IPs,
//     through a veth: what routed CNIs (Calico, Cilium in routing mode, the
//     ptp plugin) install. All of a pod's IPs must route through one veth. A
//     pod on a bridge has no such route: use cni.
//
// Never ARP or neighbour entries, which a pod can forge. A pod whose
// interface is not found is not checked (the engine's default); the agent
// rescans every sourceRescan and asks the engine again when the answer
// changed.
const (
	sourceOff   = "off"
	sourceCNI   = "cni"
	sourceRoute = "route"

	defaultCNICacheDir = "/var/lib/cni/results"
	sourceRescan       = 2 * time.Second
)

// ifaceSource answers policy.Config.Interface from the last scan.
type ifaceSource struct {
	mode     string
	cacheDir string
	nl       *netlink.Handle

	mu sync.Mutex
	// cni: attachments by pod "namespace/name".
	byPod map[string][]cniAttachment
	// scanned is a fingerprint of the last scan, to tell a change.
	scanned string
}

type cniAttachment struct {
	iface   string
	ips     []netip.Addr
	modTime time.Time
}

// newIfaceSource opens a netlink handle in the namespace the agent
// enforces (nsPath, or its own) for mode cni or route.
func newIfaceSource(mode, cacheDir, nsPath string) (*ifaceSource, error) {
	var ns netns.NsHandle
	var err error
	if nsPath != "" {
		ns, err = netns.GetFromPath(nsPath)
	} else {
		ns, err = netns.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("--source-validation: network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("--source-validation: netlink: %w", err)
	}
	return &ifaceSource{mode: mode, cacheDir: cacheDir, nl: h}, nil
}

func (s *ifaceSource) close() { s.nl.Close() }

// Interface is policy.Config.Interface.
func (s *ifaceSource) Interface(podID string, ips []netip.Addr) string {
	if len(ips) == 0 {
		return ""
	}
	if s.mode == sourceRoute {
		return s.routeIface(ips)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *cniAttachment
	for i := range s.byPod[podID] {
		a := &s.byPod[podID][i]
		if !containsAll(a.ips, ips) {
			continue
		}
		if best == nil || a.modTime.After(best.modTime) {
			best = a
		}
	}
	if best == nil {
		return ""
	}
	return best.iface
}

func containsAll(have, want []netip.Addr) bool {
	for _, ip := range want {
		if !slices.Contains(have, ip) {
			return false
		}
	}
	return true
}

// routeIface is the veth every ip has a host route through, or "".
func (s *ifaceSource) routeIface(ips []netip.Addr) string {
	index := 0
	for _, ip := range ips {
		fam := unix.AF_INET
		if ip.Is6() {
			fam = unix.AF_INET6
		}
		dst := &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}
		routes, err := s.nl.RouteListFiltered(fam, &netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) != 1 || routes[0].LinkIndex == 0 || (index != 0 && routes[0].LinkIndex != index) {
			return ""
		}
		index = routes[0].LinkIndex
	}
	link, err := s.nl.LinkByIndex(index)
	if err != nil || link.Type() != "veth" {
		return ""
	}
	return link.Attrs().Name
}

// scan reads the discovery source again and reports whether anything
// changed since the last scan.
func (s *ifaceSource) scan() (changed bool, err error) {
	var fp strings.Builder
	var byPod map[string][]cniAttachment
	switch s.mode {
	case sourceCNI:
		byPod, err = s.readCNICache()
		if err != nil {
			return false, err
		}
		for _, pod := range slices.Sorted(maps.Keys(byPod)) {
			for _, a := range byPod[pod] {
				fmt.Fprintf(&fp, "%s %s %v %d\n", pod, a.iface, a.ips, a.modTime.UnixNano())
			}
		}
	case sourceRoute:
		// Host routes through veths, as the kernel holds them.
		routes, err := s.nl.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return false, fmt.Errorf("source validation: listing routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				fmt.Fprintf(&fp, "%s %d\n", r.Dst, r.LinkIndex)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPod = byPod
	changed = fp.String() != s.scanned
	s.scanned = fp.String()
	return changed, nil
}

// cniCacheFile is the part of libcni's cached result (kind cniCacheV1)
// the agent reads.
type cniCacheFile struct {
	Kind    string     `json:"kind"`
	CNIArgs [][]string `json:"cniArgs"`
	Result  struct {
		Interfaces []struct {
			Name    string `json:"name"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	} `json:"result"`
}

// readCNICache reads every cached result in the cache directory. A file
// that does not parse, names no pod or no host-side veth is skipped: it
// gives no interface, and its pod is not checked.
func (s *ifaceSource) readCNICache() (map[string][]cniAttachment, error) {
	entries, err := os.ReadDir(s.cacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("source validation: reading %s: %w", s.cacheDir, err)
	}
	out := map[string][]cniAttachment{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(s.cacheDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		pod, a, ok := s.parseCNICache(b)
		if !ok {
			continue
		}
		a.modTime = info.ModTime()
		out[pod] = append(out[pod], a)
	}
	return out, nil
}

// parseCNICache returns the pod and attachment a cached result describes.
func (s *ifaceSource) parseCNICache(b []byte) (pod string, a cniAttachment, ok bool) {
	var f cniCacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.Kind != "cniCacheV1" {
		return "", a, false
	}
	var ns, name string
	for _, kv := range f.CNIArgs {
		if len(kv) != 2 {
			continue
		}
		switch kv[0] {
		case "K8S_POD_NAMESPACE":
			ns = kv[1]
		case "K8S_POD_NAME":
			name = kv[1]
		}
	}
	if ns == "" || name == "" {
		return "", a, false
	}
	for _, ipc := range f.Result.IPs {
		if p, err := netip.ParsePrefix(ipc.Address); err == nil {
			a.ips = append(a.ips, p.Addr().Unmap())
		}
	}
	for _, iface := range f.Result.Interfaces {
		if iface.Sandbox != "" || ir.CheckInterfaceName(iface.Name) != nil {
			continue
		}
		link, err := s.nl.LinkByName(iface.Name)
		if err != nil || link.Type() != "veth" {
			continue // the bridge, or gone
		}
		if a.iface != "" {
			return "", a, false // two host-side veths: ambiguous
		}
		a.iface = iface.Name
	}
	if a.iface == "" || len(a.ips) == 0 {
		return "", a, false
	}
	return ns + "/" + name, a, true
}

// refresher is what the agent's rescans drive: the engine asked again, and
// the controller told the engine changed.
type refresher interface {
	RefreshInterfaces(podIDs ...string)
	InterfaceProblems() []string
}

// watchInterfaces rescans every period until ctx ends; when the scan
// changed, it asks the engine for every pod's interface again and kicks
// the controller. Problems the engine reports are logged when they change.
func watchInterfaces(ctx context.Context, s *ifaceSource, e refresher, kick func(), period time.Duration, log logr.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	var lastProblems string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.scan()
		if err != nil {
			log.Error(err, "Source validation: scan failed; keeping the interfaces known")
			continue
		}
		if changed {
			e.RefreshInterfaces()
			kick()
		}
		if p := strings.Join(e.InterfaceProblems(), "; "); p != lastProblems {
			lastProblems = p
			if p != "" {
				log.Info("Source validation: interfaces not used", "problems", p)
			}
		}
	}
}

// forgedDropper is a backend that counts what its source validation
// dropped (nftables and iptables both do).
type forgedDropper interface {
	ForgedDrops(ctx context.Context) (uint64, error)
}

// registerForgedDrops exports palisade_forged_packets_dropped_total, read
// from the backend at each scrape.
func registerForgedDrops(reg prometheus.Registerer, b forgedDropper) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "palisade_forged_packets_dropped_total",
		Help: "Packets dropped by source validation: sent from a local pod's interface with a source address that is not the pod's.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := b.ForgedDrops(ctx)
		if err != nil {
			return 0
		}
		return float64(n)
	}))
}
