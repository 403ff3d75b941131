package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
)

// Mode chooses the plugin chain of a node.
type Mode string

const (
	// Bridge is the bridge plugin with host-local IPAM, configured
	// directly (CNI 1.0.0).
	Bridge Mode = "bridge"
	// Flannel is the flannel plugin delegating to bridge with host-local,
	// from a subnet.env as flanneld writes it (CNI 0.3.1, as kube-flannel's
	// configuration list).
	Flannel Mode = "flannel"
)

// BridgeName is the Linux bridge both modes create in the node's
// namespace, flannel's name for it.
const BridgeName = "cni0"

// Config describes one node's runtime.
type Config struct {
	// NodeNS is the node's network namespace: the plugins' "host".
	NodeNS netns.NsHandle
	// Dir holds the node's CNI state (see the package documentation); it
	// must exist. Use one per node.
	Dir string
	// PluginDirs are searched for plugins (libcni's path, CNI_PATH): the
	// Debian directory and, for Flannel, the flannel binary's directory.
	PluginDirs []string
	// Mode is Bridge or Flannel.
	Mode Mode
	// Network is the cluster's IPv4 pod network (flannel's
	// FLANNEL_NETWORK) and Subnet this node's part of it (FLANNEL_SUBNET,
	// host-local's range); the bridge holds Subnet's first address and is
	// the pods' gateway. Both are required.
	Network, Subnet netip.Prefix
	// Network6 and Subnet6, when set (both or neither), are the same for
	// IPv6 (FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET): pods get an
	// address of each family.
	Network6, Subnet6 netip.Prefix
	// MTU is the pods' MTU; 0 means 1500 (flannel's host-gw backend writes
	// the external interface's MTU).
	MTU int
}

// Runtime adds and deletes pods' networks on one node as a container
// runtime does. It implements lab.Wiring. It is safe for concurrent use.
type Runtime struct {
	cfg      Config
	netName  string
	confPath string
	list     *libcni.NetworkConfigList
	cni      *libcni.CNIConfig

	mu   sync.Mutex
	pods map[string]*libcni.RuntimeConf // by lab pod name ("namespace/name")
	log  io.Closer
}

// The network names: kube-flannel's for flannel, the bridge's own
// otherwise. host-local keeps its leases in a directory of that name.
const (
	flannelNetwork = "cbr0"
	bridgeNetwork  = "bridge"
)

// NewRuntime writes the node's network configuration list (and, for
// Flannel, its subnet.env) under cfg.Dir and reads the list back as a
// runtime does. It fails on a bad configuration, naming the field.
func NewRuntime(cfg Config) (*Runtime, error) {
	switch {
	case cfg.Dir == "":
		return nil, errors.New("cni: Config.Dir: empty")
	case !cfg.NodeNS.IsOpen():
		return nil, errors.New("cni: Config.NodeNS: not an open namespace handle")
	case cfg.Mode != Bridge && cfg.Mode != Flannel:
		return nil, fmt.Errorf("cni: Config.Mode: %q, want %q or %q", cfg.Mode, Bridge, Flannel)
	}
	if err := checkPool("", cfg.Network, cfg.Subnet, true); err != nil {
		return nil, err
	}
	if cfg.Network6.IsValid() || cfg.Subnet6.IsValid() {
		if err := checkPool("6", cfg.Network6, cfg.Subnet6, false); err != nil {
			return nil, err
		}
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	r := &Runtime{cfg: cfg, pods: map[string]*libcni.RuntimeConf{}}
	var conf []byte
	var err error
	if cfg.Mode == Flannel {
		r.netName = flannelNetwork
		if err := os.WriteFile(r.SubnetEnvPath(), SubnetEnv(cfg.Network, cfg.Subnet, cfg.Network6, cfg.Subnet6, cfg.MTU, true), 0o644); err != nil {
			return nil, err
		}
		conf, err = flannelConfList(r.netName, r.SubnetEnvPath(), filepath.Join(cfg.Dir, "flannel"), r.hostLocalDir())
	} else {
		r.netName = bridgeNetwork
		conf, err = bridgeConfList(r.netName, []netip.Prefix{cfg.Subnet, cfg.Subnet6}, cfg.MTU, r.hostLocalDir())
	}
	if err != nil {
		return nil, err
	}
	confDir := filepath.Join(cfg.Dir, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, err
	}
	r.confPath = filepath.Join(confDir, "10-"+r.netName+".conflist")
	if err := os.WriteFile(r.confPath, conf, 0o644); err != nil {
		return nil, err
	}
	if r.list, err = libcni.ConfListFromFile(r.confPath); err != nil {
		return nil, fmt.Errorf("cni: %s: %w", r.confPath, err)
	}
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, "plugins.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r.log = logf
	exec := &nodeExec{ns: cfg.NodeNS, raw: invoke.RawExec{Stderr: logf}}
	r.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, r.CacheDir(), exec)
	return r, nil
}

// Close closes the plugins' log. Pods still wired stay so (delete them
// first: lab.RemovePod, or closing the lab).
func (r *Runtime) Close() error { return r.log.Close() }

// Network is the network's name (the configuration list's "name").
func (r *Runtime) Network() string { return r.netName }

// ConfPath is the network configuration list's file.
func (r *Runtime) ConfPath() string { return r.confPath }

// CacheDir is libcni's cache directory of this node: results/ holds one
// file per pod network attachment (see the package documentation).
func (r *Runtime) CacheDir() string { return filepath.Join(r.cfg.Dir, "cache") }

// SubnetEnvPath is where flanneld's subnet.env is written (Flannel mode).
func (r *Runtime) SubnetEnvPath() string { return filepath.Join(r.cfg.Dir, "subnet.env") }

func (r *Runtime) hostLocalDir() string { return filepath.Join(r.cfg.Dir, "host-local") }

// Wire runs ADD for pod ("namespace/name", the lab's name) with its
// namespace ns, and returns the addresses in the result. Errors carry the
// plugin's message.
func (r *Runtime) Wire(ctx context.Context, pod string, ns netns.NsHandle) ([]netip.Addr, error) {
	podNS, podName, ok := strings.Cut(pod, "/")
	if !ok || podNS == "" || podName == "" {
		return nil, fmt.Errorf("cni: pod %q: want namespace/name", pod)
	}
	id := make([]byte, 32) // a sandbox ID, as runtimes make them
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	rt := &libcni.RuntimeConf{
		ContainerID: hex.EncodeToString(id),
		NetNS:       netnsPath(ns),
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", podNS},
			{"K8S_POD_NAME", podName},
			{"K8S_POD_INFRA_CONTAINER_ID", hex.EncodeToString(id)},
		},
	}
	r.mu.Lock()
	if r.pods[pod] != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("cni: pod %s: already added", pod)
	}
	r.pods[pod] = rt // before ADD: a DEL after a failed ADD needs it
	r.mu.Unlock()
	res, err := r.cni.AddNetworkList(ctx, r.list, rt)
	if err != nil {
		return nil, fmt.Errorf("cni: ADD %s (network %s): %w", pod, r.netName, err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("cni: ADD %s: result: %w", pod, err)
	}
	var ips []netip.Addr
	for _, c := range cur.IPs {
		ip, ok := netip.AddrFromSlice(c.Address.IP)
		if !ok {
			return nil, fmt.Errorf("cni: ADD %s: result address %q", pod, c.Address.String())
		}
		ips = append(ips, ip.Unmap())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("cni: ADD %s: the result holds no address", pod)
	}
	return ips, nil
}

// netnsPath is CNI_NETNS for a namespace handle of this process: a path
// the plugin process can open, valid while the handle is.
func netnsPath(ns netns.NsHandle) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns)) }

// delTimeout bounds one DEL (Unwire gets no context).
const delTimeout = 30 * time.Second

// Unwire runs DEL for pod with the runtime configuration of its ADD, as a
// runtime does when it tears a sandbox down (also after a failed ADD). A
// pod never added is nothing to delete: nil.
func (r *Runtime) Unwire(pod string, ns netns.NsHandle) error {
	r.mu.Lock()
	rt := r.pods[pod]
	if rt == nil || rt.NetNS != netnsPath(ns) { // not this pod's ADD
		r.mu.Unlock()
		return nil
	}
	delete(r.pods, pod)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), delTimeout)
	defer cancel()
	if err := r.cni.DelNetworkList(ctx, r.list, rt); err != nil {
		return fmt.Errorf("cni: DEL %s (network %s): %w", pod, r.netName, err)
	}
	return nil
}

// Result returns the cached ADD result of a pod wired now, as libcni keeps
// it in CacheDir (in the network's CNI version, converted to 1.0.0), and
// false for a pod not wired by this runtime.
func (r *Runtime) Result(pod string) (*types100.Result, bool, error) {
	r.mu.Lock()
	rt := r.pods[pod]
	r.mu.Unlock()
	if rt == nil {
		return nil, false, nil
	}
	res, err := r.cni.GetNetworkListCachedResult(r.list, rt)
	if err != nil {
		return nil, true, fmt.Errorf("cni: cached result of %s: %w", pod, err)
	}
	if res == nil {
		return nil, true, fmt.Errorf("cni: no cached result of %s in %s", pod, r.CacheDir())
	}
	cur, err := types100.NewResultFromResult(res)
	return cur, true, err
}

// Leases returns the addresses host-local holds for this node's pods now,
// sorted: one file per address in its data directory. Empty before the
// first ADD.
func (r *Runtime) Leases() ([]netip.Addr, error) {
	ents, err := os.ReadDir(filepath.Join(r.hostLocalDir(), r.netName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, e := range ents {
		if ip, err := netip.ParseAddr(e.Name()); err == nil {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// nodeExec starts plugin processes from a thread locked into the node's
// namespace: the plugin (and whatever it delegates to) runs there.
type nodeExec struct {
	ns  netns.NsHandle
	raw invoke.RawExec
	version.PluginDecoder
}

func (e *nodeExec) ExecPlugin(ctx context.Context, path string, stdin []byte, env []string) ([]byte, error) {
	var out []byte
	err := lab.InNamespace(e.ns, func() error {
		var err error
		out, err = e.raw.ExecPlugin(ctx, path, stdin, env)
		return err
	})
	return out, err
}

func (e *nodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// checkPool checks a network and the node's subnet of it, of one family.
func checkPool(suffix string, network, subnet netip.Prefix, v4 bool) error {
	fam := "IPv4"
	if !v4 {
		fam = "IPv6"
	}
	switch {
	case !network.IsValid() || !subnet.IsValid():
		return fmt.Errorf("cni: Config.Network%s and Config.Subnet%s: both required", suffix, suffix)
	case network.Addr().Is4() != v4 || network.Addr().Is4In6():
		return fmt.Errorf("cni: Config.Network%s: %s is not %s", suffix, network, fam)
	case subnet.Addr().Is4() != v4 || subnet.Bits() < network.Bits() || !network.Contains(subnet.Addr()):
		return fmt.Errorf("cni: Config.Subnet%s: %s is not inside Config.Network%s %s", suffix, subnet, suffix, network)
	case subnet != subnet.Masked():
		return fmt.Errorf("cni: Config.Subnet%s: %s has host bits set", suffix, subnet)
	}
	return nil
}

// SubnetEnv is a subnet.env as flanneld writes it: the network, this
// node's subnet as its first address (the bridge's) with the prefix length,
// the IPv6 pair when network6 is valid, the MTU, and whether flanneld
// masquerades traffic leaving the network (then the bridge plugin must not).
func SubnetEnv(network, subnet, network6, subnet6 netip.Prefix, mtu int, ipMasq bool) []byte {
	b := fmt.Appendf(nil, "FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\n", network, gatewayOf(subnet))
	if network6.IsValid() {
		b = fmt.Appendf(b, "FLANNEL_IPV6_NETWORK=%s\nFLANNEL_IPV6_SUBNET=%s\n", network6, gatewayOf(subnet6))
	}
	return fmt.Appendf(b, "FLANNEL_MTU=%d\nFLANNEL_IPMASQ=%t\n", mtu, ipMasq)
}

// gatewayOf is a subnet's first address with the subnet's length: the
// bridge's address.
func gatewayOf(subnet netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits())
}

// flannelConfList is kube-flannel's configuration list (its delegate
// settings: hairpin mode, the bridge as default gateway) with the state
// directories moved under the runtime's: subnetFile, flannel's dataDir and
// host-local's (the ipam section, which flannel completes with the subnet
// and the network's route). No portmap: the suite maps no host ports.
func flannelConfList(name, subnetFile, dataDir, hostLocalDir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "0.3.1",
		"name":       name,
		"plugins": []any{map[string]any{
			"type":       "flannel",
			"subnetFile": subnetFile,
			"dataDir":    dataDir,
			"ipam":       map[string]any{"dataDir": hostLocalDir},
			"delegate": map[string]any{
				"bridge":           BridgeName,
				"hairpinMode":      true,
				"isDefaultGateway": true,
			},
		}},
	}, "", "  ")
}

// bridgeConfList is the bridge plugin with host-local over the node's
// subnets (one range set per valid subnet), the bridge as the pods' default
// gateway, no masquerading (pod sources must stay visible to policy).
func bridgeConfList(name string, subnets []netip.Prefix, mtu int, hostLocalDir string) ([]byte, error) {
	var ranges [][]map[string]any
	for _, s := range subnets {
		if s.IsValid() {
			ranges = append(ranges, []map[string]any{{"subnet": s.String()}})
		}
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []any{map[string]any{
			"type":             "bridge",
			"bridge":           BridgeName,
			"isGateway":        true,
			"isDefaultGateway": true,
			"ipMasq":           false,
			"hairpinMode":      true,
			"mtu":              mtu,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  ranges,
				"dataDir": hostLocalDir,
			},
		}},
	}, "", "  ")
}
