package bridgenf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/palisade-net/palisade/backend/internal/nsthread"
)

// The br_netfilter settings, per network namespace. They exist only where
// the kernel has br_netfilter (built in, or the module loaded).
const (
	CallIPTablesPath  = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	CallIP6TablesPath = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// ErrNotLoaded is returned by Enable when the kernel has no br_netfilter
// (no /proc/sys/net/bridge): nothing can make bridged traffic pass the IP
// hooks then.
var ErrNotLoaded = errors.New("br_netfilter is not loaded (no /proc/sys/net/bridge)")

// Config says which network namespace to check. The zero value checks the
// calling process's own namespace and requires the IPv6 setting only where
// a bridge carries IPv6 pod traffic.
type Config struct {
	// NetNS is a file descriptor of the network namespace to check, the
	// one the backend programs (the caller keeps it open); 0 means the
	// calling process's own.
	NetNS int
	// RequireIPv6 requires bridge-nf-call-ip6tables on whenever a bridge
	// has ports. Without it, the IPv6 setting is required only when a
	// bridge with ports carries a route to a global IPv6 destination (a pod
	// subnet like fd00:10:244::/64 dev cni0, or per-pod routes).
	RequireIPv6 bool
}

// Status is what Check found.
type Status struct {
	// Bridges are the namespace's bridges that have at least one port,
	// sorted. Empty: no traffic is bridged, and the settings do not matter.
	Bridges []string
	// Loaded reports whether the kernel has br_netfilter.
	Loaded bool
	// CallIPTables and CallIP6Tables are the settings' values (false when
	// not Loaded).
	CallIPTables, CallIP6Tables bool
	// IPv6 reports whether the IPv6 setting is required: Config.RequireIPv6,
	// or a bridge with ports routes a global IPv6 destination.
	IPv6 bool
}

// OK reports whether bridged traffic reaches the IP hooks, where the
// backends filter: no bridge has a port, or br_netfilter is on for IPv4
// and, when IPv6 is required, for IPv6.
func (s Status) OK() bool {
	return len(s.Bridges) == 0 || (s.CallIPTables && (s.CallIP6Tables || !s.IPv6))
}

// Reason says why the status is not OK, naming the bridges and the
// settings to turn on; "" when it is OK.
func (s Status) Reason() string {
	if s.OK() {
		return ""
	}
	bridges := strings.Join(s.Bridges, ", ")
	if !s.Loaded {
		return fmt.Sprintf("bridge %s has ports but the kernel has no br_netfilter: traffic between pods on it bypasses the packet filter (load the br_netfilter module)", bridges)
	}
	var off []string
	if !s.CallIPTables {
		off = append(off, "net.bridge.bridge-nf-call-iptables")
	}
	if s.IPv6 && !s.CallIP6Tables {
		off = append(off, "net.bridge.bridge-nf-call-ip6tables")
	}
	return fmt.Sprintf("bridge %s has ports but %s is 0: traffic between pods on it bypasses the packet filter (set it to 1)", bridges, strings.Join(off, " and "))
}

// Check reads the bridges and the br_netfilter settings of the namespace
// of cfg.NetNS (sysctls under /proc/sys/net are per namespace, read from a
// thread inside it). A kernel without br_netfilter is not an error: Status
// says so. It fails when the namespace cannot be entered or listed.
func Check(cfg Config) (Status, error) {
	var st Status
	err := nsthread.Do(cfg.NetNS, func() error {
		var err error
		st, err = check(cfg.RequireIPv6)
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("bridgenf: %w", err)
	}
	return st, nil
}

func check(requireIPv6 bool) (Status, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return Status{}, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return Status{}, fmt.Errorf("list links: %w", err)
	}
	bridges := map[int]string{}
	for _, l := range links {
		if l.Type() == "bridge" {
			bridges[l.Attrs().Index] = l.Attrs().Name
		}
	}
	used := map[int]bool{}
	for _, l := range links {
		if _, ok := bridges[l.Attrs().MasterIndex]; ok {
			used[l.Attrs().MasterIndex] = true
		}
	}
	st := Status{IPv6: requireIPv6}
	for i := range used {
		st.Bridges = append(st.Bridges, bridges[i])
	}
	slices.Sort(st.Bridges)
	if len(st.Bridges) > 0 && !st.IPv6 {
		routes, err := h.RouteList(nil, netlink.FAMILY_V6)
		if err != nil {
			return Status{}, fmt.Errorf("list IPv6 routes: %w", err)
		}
		for _, r := range routes {
			if !used[r.LinkIndex] || r.Dst == nil {
				continue
			}
			if a, ok := netip.AddrFromSlice(r.Dst.IP); ok && a.IsGlobalUnicast() {
				st.IPv6 = true
				break
			}
		}
	}
	st.CallIPTables, st.Loaded, err = readBool(CallIPTablesPath)
	if err != nil {
		return Status{}, err
	}
	if st.Loaded {
		if st.CallIP6Tables, _, err = readBool(CallIP6TablesPath); err != nil {
			return Status{}, err
		}
	}
	return st, nil
}

// readBool reads a 0/1 sysctl; exists is false when the file is missing.
func readBool(path string) (on, exists bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read %s: %w", path, err)
	}
	switch v := strings.TrimSpace(string(b)); v {
	case "0":
		return false, true, nil
	case "1":
		return true, true, nil
	default:
		return false, true, fmt.Errorf("read %s: %q, want 0 or 1", path, v)
	}
}

// Enable turns br_netfilter on for IPv4 and IPv6 in the namespace of
// cfg.NetNS: bridged traffic then passes the IP hooks of every component
// in that namespace, not only ours. Settings already on are left alone.
// It fails with ErrNotLoaded when the kernel has no br_netfilter.
func Enable(cfg Config) error {
	err := nsthread.Do(cfg.NetNS, func() error {
		for _, p := range []string{CallIPTablesPath, CallIP6TablesPath} {
			on, exists, err := readBool(p)
			switch {
			case err != nil:
				return err
			case !exists:
				return ErrNotLoaded
			case on:
				continue
			}
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bridgenf: %w", err)
	}
	return nil
}
