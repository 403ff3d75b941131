// Package flows reads netpolctl flow files and resolves each flow against a
// cluster state to the addresses a packet would carry.
//
// A flow file holds one flow per line, "SRC DST PORT PROTOCOL": SRC and DST
// are "namespace/pod" or an IP literal, PORT is 1-65535, PROTOCOL is TCP,
// UDP or SCTP. Blank lines and lines starting with '#' are skipped, as is
// anything after a '#'.
package flows

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/policy/ir"
)

// End is one end of a flow: a pod by name, or an IP literal.
type End struct {
	// Namespace and Name are set for a pod.
	Namespace, Name string
	// IP is set for an IP literal.
	IP netip.Addr
	// Text is the end as the flow file wrote it, if it was read from one.
	Text string
}

// String renders the end as written: "namespace/pod" or the IP literal as
// the flow file spelled it.
func (e End) String() string {
	switch {
	case e.Text != "":
		return e.Text
	case e.IP.IsValid():
		return e.IP.String()
	}
	return e.Namespace + "/" + e.Name
}

// Flow is one line of a flow file.
type Flow struct {
	Line     int
	Src, Dst End
	Port     uint16
	Protocol ir.Protocol
}

// ReadFile reads a flow file.
func ReadFile(path string) ([]Flow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads flows from r; name is used in errors. Every bad line is
// reported.
func Parse(name string, r io.Reader) ([]Flow, error) {
	var out []Flow
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		f, err := parseLine(fields)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		f.Line = n
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return out, errors.Join(errs...)
}

// ParseFields reads one flow from its four fields, SRC DST PORT PROTOCOL,
// as a flow file's line holds them; errors name the field.
func ParseFields(fields []string) (Flow, error) { return parseLine(fields) }

// ParseEnd reads one end of a flow: "namespace/pod" or an IP literal.
func ParseEnd(s string) (End, error) { return parseEnd(s) }

func parseLine(fields []string) (Flow, error) {
	if len(fields) != 4 {
		return Flow{}, fmt.Errorf("want \"SRC DST PORT PROTOCOL\", got %d fields", len(fields))
	}
	var f Flow
	var err error
	if f.Src, err = parseEnd(fields[0]); err != nil {
		return Flow{}, fmt.Errorf("SRC: %w", err)
	}
	if f.Dst, err = parseEnd(fields[1]); err != nil {
		return Flow{}, fmt.Errorf("DST: %w", err)
	}
	port, err := strconv.ParseUint(fields[2], 10, 16)
	if err != nil || port == 0 {
		return Flow{}, fmt.Errorf("PORT: %q is not a port number (1-65535)", fields[2])
	}
	f.Port = uint16(port)
	proto, ok := ir.ParseProtocol(strings.ToUpper(fields[3]))
	if !ok {
		return Flow{}, fmt.Errorf("PROTOCOL: %q is not TCP, UDP or SCTP", fields[3])
	}
	f.Protocol = proto
	return f, nil
}

func parseEnd(s string) (End, error) {
	if ns, name, ok := strings.Cut(s, "/"); ok {
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return End{}, fmt.Errorf("%q is not namespace/pod", s)
		}
		return End{Namespace: ns, Name: name, Text: s}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return End{}, fmt.Errorf("%q is neither namespace/pod nor an IP address", s)
	}
	return End{IP: ip.Unmap(), Text: s}, nil
}

// Resolved is a flow with the addresses its first packet carries.
type Resolved struct {
	Flow
	// SrcIP and DstIP are valid unless Absent is set.
	SrcIP, DstIP netip.Addr
	// SrcPod and DstPod are the pods at each end, if any (an IP literal
	// equal to a pod's IP is that pod).
	SrcPod, DstPod *corev1.Pod
	// Absent, when set, says why no packet can be sent (a pod that does not
	// exist or does not run, or no address of the flow's family): the
	// verdict is deny.
	Absent string
}

// Resolve finds the addresses of f in st. A pod-to-pod flow uses the source
// pod's primary family (status.podIP); a flow with an IP literal uses that
// literal's family.
func Resolve(st *manifest.State, f Flow) Resolved {
	r := Resolved{Flow: f}
	var srcIPs, dstIPs []netip.Addr
	var why string
	if r.SrcPod, srcIPs, why = resolveEnd(st, f.Src); why != "" {
		r.Absent = "source " + why
		return r
	}
	if r.DstPod, dstIPs, why = resolveEnd(st, f.Dst); why != "" {
		r.Absent = "destination " + why
		return r
	}
	var fam ir.Family
	switch {
	case f.Dst.IP.IsValid() && !f.Src.IP.IsValid():
		fam = ir.FamilyOf(f.Dst.IP)
	default:
		fam = ir.FamilyOf(srcIPs[0]) // the literal, or the pod's primary IP
	}
	r.SrcIP, r.DstIP = pick(srcIPs, fam), pick(dstIPs, fam)
	if f.Src.IP.IsValid() {
		r.SrcIP = f.Src.IP
	}
	if f.Dst.IP.IsValid() {
		r.DstIP = f.Dst.IP
	}
	switch {
	case !r.SrcIP.IsValid():
		r.Absent = fmt.Sprintf("source %s has no IPv%d address", f.Src, fam)
	case !r.DstIP.IsValid():
		r.Absent = fmt.Sprintf("destination %s has no IPv%d address", f.Dst, fam)
	case ir.FamilyOf(r.SrcIP) != ir.FamilyOf(r.DstIP):
		r.Absent = fmt.Sprintf("%s and %s are of different families", r.SrcIP, r.DstIP)
	}
	return r
}

// resolveEnd returns the pod (if any) and the addresses of one end, primary
// first, or why the end cannot send or receive.
func resolveEnd(st *manifest.State, e End) (*corev1.Pod, []netip.Addr, string) {
	if e.IP.IsValid() {
		if pod := podWithIP(st, e.IP); pod != nil {
			return pod, []netip.Addr{e.IP}, ""
		}
		return nil, []netip.Addr{e.IP}, ""
	}
	pod := st.Pod(e.Namespace, e.Name)
	if pod == nil {
		return nil, nil, fmt.Sprintf("pod %s does not exist", e)
	}
	if ph := pod.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		return pod, nil, fmt.Sprintf("pod %s is %s", e, ph)
	}
	ips := PodIPs(pod)
	if len(ips) == 0 {
		return pod, nil, fmt.Sprintf("pod %s has no IP", e)
	}
	return pod, ips, ""
}

// PodIPs returns a pod's valid addresses, primary (status.podIP) first.
func PodIPs(pod *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	add(pod.Status.PodIP)
	for _, p := range pod.Status.PodIPs {
		add(p.IP)
	}
	return out
}

// podWithIP returns the running pod that owns ip, preferring pods that are
// not hostNetwork (several hostNetwork pods share their node's IP).
func podWithIP(st *manifest.State, ip netip.Addr) *corev1.Pod {
	var host *corev1.Pod
	for _, p := range st.Pods {
		if ph := p.Status.Phase; ph == corev1.PodSucceeded || ph == corev1.PodFailed {
			continue
		}
		if slices.Contains(PodIPs(p), ip) {
			if !p.Spec.HostNetwork {
				return p
			}
			if host == nil {
				host = p
			}
		}
	}
	return host
}

func pick(ips []netip.Addr, fam ir.Family) netip.Addr {
	for _, ip := range ips {
		if ir.FamilyOf(ip) == fam {
			return ip
		}
	}
	return netip.Addr{}
}
