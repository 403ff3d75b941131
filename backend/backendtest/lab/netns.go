package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/internal/nsthread"
)

// sysctl is one /proc/sys/net setting, path relative to /proc/sys.
type sysctl struct{ path, value string }

// Every namespace the lab creates: IPv6 addresses usable at once (no DAD),
// no router solicitations on the lab's links, and room for a long accept
// queue (see listenBacklog).
var baseSysctls = []sysctl{
	{"net/core/somaxconn", strconv.Itoa(listenBacklog)},
	{"net/ipv6/conf/all/accept_dad", "0"},
	{"net/ipv6/conf/default/accept_dad", "0"},
	{"net/ipv6/conf/default/dad_transmits", "0"},
	{"net/ipv6/conf/default/router_solicitations", "0"},
}

// Node namespaces also forward, and do not filter by reverse path (a
// backend under test decides what passes, not rp_filter).
var nodeSysctls = append(append([]sysctl(nil), baseSysctls...),
	sysctl{"net/ipv4/ip_forward", "1"},
	sysctl{"net/ipv6/conf/all/forwarding", "1"},
	sysctl{"net/ipv4/conf/all/rp_filter", "0"},
	sysctl{"net/ipv4/conf/default/rp_filter", "0"},
)

// inNS runs fn on an OS thread switched into ns and switches the thread
// back before it is used for anything else (package nsthread): no
// goroutine ever runs in a lab namespace by accident.
//
// Sockets fn creates stay in ns for their lifetime, wherever they are used.
func inNS(ns netns.NsHandle, fn func() error) error {
	if ns == 0 {
		// nsthread reads descriptor 0 as "the current namespace": never
		// run lab work in the host's.
		return errors.New("lab: a namespace handle on descriptor 0")
	}
	var ferr error
	if err := nsthread.Do(int(ns), func() error { ferr = fn(); return nil }); err != nil {
		return errors.Join(ferr, fmt.Errorf("lab: %w", err))
	}
	return ferr
}

// newNS creates an anonymous network namespace, applies sysctls inside it
// and returns a handle (a file descriptor) to it. The namespace has no name
// and no mount: it disappears when the handle and every socket in it are
// closed, at the latest when the process exits, however it exits.
func newNS(sysctls []sysctl) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			resc <- result{netns.None(), fmt.Errorf("lab: current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // switches this thread into the new namespace
		if err == nil {
			err = writeSysctls(sysctls)
		}
		if serr := netns.Set(orig); serr != nil {
			if ns.IsOpen() {
				ns.Close()
			}
			resc <- result{netns.None(), errors.Join(err, fmt.Errorf("lab: leave network namespace: %w", serr))}
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		if err != nil {
			if ns.IsOpen() {
				ns.Close()
			}
			resc <- result{netns.None(), fmt.Errorf("lab: create network namespace: %w", err)}
			return
		}
		resc <- result{ns, nil}
	}()
	r := <-resc
	return r.ns, r.err
}

// writeSysctls writes settings through /proc/sys, which resolves net
// settings against the calling thread's namespace: call it from a thread
// inside the target namespace.
func writeSysctls(sysctls []sysctl) error {
	for _, s := range sysctls {
		f, err := os.OpenFile(filepath.Join("/proc/sys", s.path), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", s.path, err)
		}
		_, werr := f.WriteString(s.value)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s.path, s.value, err)
		}
	}
	return nil
}

// bridgeSysctls turn br_netfilter on or off for the calling thread's
// namespace: whether bridged IPv4 and IPv6 packets pass the IP hooks.
func bridgeSysctls(on bool) []sysctl {
	v := "0"
	if on {
		v = "1"
	}
	return []sysctl{
		{"net/bridge/bridge-nf-call-iptables", v},
		{"net/bridge/bridge-nf-call-ip6tables", v},
	}
}
