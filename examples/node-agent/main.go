// Command node-agent enforces Kubernetes NetworkPolicy on one node: it
// watches the API server with package informer and programs the node's
// packet filter with backend/nftables. It is meant to run as a DaemonSet
// next to a CNI that provides networking without policy (see README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/conntrack"
	"github.com/palisade-net/palisade/backend/iptables"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/informer"
	"github.com/palisade-net/palisade/policy"
)

const component = "palisade-node-agent"

// apiAttemptTimeout bounds one request of the startup check.
const apiAttemptTimeout = 5 * time.Second

// Fail modes: what the node enforces before the first full Sync.
const (
	failClosed = "closed"
	failOpen   = "open"
)

// options are the command-line flags.
type options struct {
	kubeconfig      string
	nodeName        string
	backend         string
	tableName       string
	netns           string
	metricsAddr     string
	healthAddr      string
	resyncPeriod    time.Duration
	driftCheck      time.Duration
	minSyncInterval time.Duration
	failMode        string
	cleanupOnExit   bool
	apiTimeout      time.Duration
	// clusterPolicies enables AdminNetworkPolicy, BaselineAdminNetworkPolicy
	// and ClusterNetworkPolicy (and the Node watch their node peers need).
	clusterPolicies   bool
	clusterPolicyPoll time.Duration
	established       string
	apiProbePeriod    time.Duration
	apiGate           bool
	bridgeNetfilter   string
	bridgeCheck       time.Duration

	// sourceValidation is off, cni or route (srcguard.go).
	sourceValidation string
	cniCacheDir      string
	// log configures the verdict log (verdictlog.go).
	log      logOptions
	counters counterOptions
}

// parseFlags parses args (without the program name). getenv supplies the
// NODE_NAME default. klog's flags are registered on the same set.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(component, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; the in-cluster configuration when empty")
	fs.StringVar(&o.nodeName, "node-name", getenv("NODE_NAME"), "name of this node (default: $NODE_NAME); required")
	fs.StringVar(&o.backend, "backend", "nftables", "packet filter backend: nftables or iptables")
	fs.StringVar(&o.tableName, "table-name", nftables.DefaultTableName, "name of the agent's own nftables table (inet family)")
	fs.StringVar(&o.netns, "netns", "", "program the packet filter of the network namespace at this path (e.g. /proc/PID/ns/net); the agent itself stays in its own namespace")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":9655", `address of the Prometheus /metrics endpoint; "" or "0" disables it`)
	fs.StringVar(&o.healthAddr, "health-addr", ":9656", `address of /healthz and /readyz; "" or "0" disables them`)
	fs.DurationVar(&o.resyncPeriod, "resync-period", informer.DefaultResyncPeriod, "period of the full Sync that repairs drift in the packet filter")
	fs.DurationVar(&o.driftCheck, "drift-check-interval", informer.DefaultDriftCheckInterval, "period of the cheap check (nftables: the ruleset generation; iptables: our chains, jumps and set names read back) that repairs a flushed or changed packet filter at once; negative disables it")
	fs.DurationVar(&o.minSyncInterval, "min-sync-interval", informer.DefaultMinSyncInterval, "coalescing window: at most one packet filter update per interval")
	fs.StringVar(&o.failMode, "fail-mode", failClosed, "before the first full sync: closed (isolate this node's pods on a node with no rules yet) or open (program nothing until the first sync)")
	fs.BoolVar(&o.cleanupOnExit, "cleanup-on-exit", false, "remove the agent's rules on exit (default: keep them, so a restart opens nothing)")
	fs.DurationVar(&o.apiTimeout, "api-timeout", 15*time.Second, "how long to wait for the API server at startup before failing")
	fs.BoolVar(&o.clusterPolicies, "cluster-policies", true, "enforce the cluster-wide policies of policy.networking.k8s.io (AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy) whenever their CRDs are installed; needs list/watch on them and on nodes")
	fs.DurationVar(&o.clusterPolicyPoll, "cluster-policy-poll", informer.DefaultClusterPolicyPoll, "how often discovery is asked whether the cluster-wide policy CRDs were installed or removed")
	fs.StringVar(&o.established, "established", string(conntrack.ModeFollow), "established connections a policy change denies: follow (cut them, so every packet is judged by the current policy) or keep (they survive; only new connections see the change)")
	fs.DurationVar(&o.apiProbePeriod, "api-probe-period", apiProbePeriod, "how often the API server's /readyz is probed to report its reachability (log, palisade_api_server_reachable); enforcement does not depend on it")
	fs.StringVar(&o.sourceValidation, "source-validation", sourceOff, "drop what a local pod sends from an address that is not its own, on its interface (routed veth or bridge port) found by: cni (the CNI result cache of --cni-cache-dir, any CNI run through libcni), route (the node's host route to each pod IP, routed CNIs), or off")
	fs.StringVar(&o.cniCacheDir, "cni-cache-dir", defaultCNICacheDir, "the container runtime's CNI result cache, for --source-validation=cni")
	fs.BoolVar(&o.apiGate, "api-gate", true, "while the API server is unreachable, hold the watches' retries until it answers again (then resume within about 2 s, with jitter); false leaves them to client-go's back-off (up to a minute after a long outage)")
	fs.StringVar(&o.bridgeNetfilter, "bridge-netfilter", bridgeCheck, "pods on a Linux bridge (flannel, Canal, the CNI bridge plugin) are filtered only while br_netfilter is on: check (not ready, log, Event and palisade_bridge_netfilter_ok=0 while it is off on a bridge with ports) or enable (also turn it on, for every packet filter of the namespace)")
	fs.DurationVar(&o.bridgeCheck, "bridge-check-period", bridgeCheckPeriod, "how often the bridge check runs (also at start)")
	o.counters.register(fs)
	klog.InitFlags(fs)
	o.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return o, o.validate()
}

// validate checks the flags together and reports every problem.
func (o *options) validate() error {
	var errs []error
	if o.nodeName == "" {
		errs = append(errs, errors.New("--node-name is required (or set NODE_NAME)"))
	}
	switch o.backend {
	case "nftables", "iptables":
	default:
		errs = append(errs, fmt.Errorf("--backend %q: must be nftables or iptables", o.backend))
	}
	if o.tableName == "" {
		errs = append(errs, errors.New("--table-name must not be empty"))
	}
	switch o.failMode {
	case failClosed, failOpen:
	default:
		errs = append(errs, fmt.Errorf("--fail-mode %q: must be closed or open", o.failMode))
	}
	if o.minSyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("--min-sync-interval %v: must be positive", o.minSyncInterval))
	}
	if o.resyncPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--resync-period %v: must be positive", o.resyncPeriod))
	}
	if o.apiTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--api-timeout %v: must be positive", o.apiTimeout))
	}
	if o.clusterPolicyPoll <= 0 {
		errs = append(errs, fmt.Errorf("--cluster-policy-poll %v: must be positive", o.clusterPolicyPoll))
	}
	if o.apiProbePeriod <= 0 {
		errs = append(errs, fmt.Errorf("--api-probe-period %v: must be positive", o.apiProbePeriod))
	}
	switch o.sourceValidation {
	case sourceOff, sourceCNI, sourceRoute:
	default:
		errs = append(errs, fmt.Errorf("--source-validation %q: must be off, cni or route", o.sourceValidation))
	}
	switch o.bridgeNetfilter {
	case bridgeCheck, bridgeEnable:
	default:
		errs = append(errs, fmt.Errorf("--bridge-netfilter %q: must be check or enable", o.bridgeNetfilter))
	}
	if o.bridgeCheck <= 0 {
		errs = append(errs, fmt.Errorf("--bridge-check-period %v: must be positive", o.bridgeCheck))
	}
	if _, err := conntrack.ParseMode(o.established); err != nil {
		errs = append(errs, fmt.Errorf("--established: %w", err))
	}
	errs = append(errs, o.log.validate()...)
	errs = append(errs, o.counters.validate()...)
	return errors.Join(errs...)
}

// disabled reports whether an address flag turns its server off.
func disabled(addr string) bool { return addr == "" || addr == "0" }

func main() {
	opts, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", component, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := klog.Background().WithName(component)
	ctx = klog.NewContext(ctx, logger)
	if err := run(ctx, opts); err != nil {
		logger.Error(err, "Exiting")
		klog.Flush()
		fmt.Fprintf(os.Stderr, "%s: %v\n", component, err)
		os.Exit(1)
	}
	klog.Flush()
}

// run connects to the API server, programs the packet filter until ctx is
// done, and shuts down.
func run(ctx context.Context, o *options) error {
	log := klog.FromContext(ctx)

	var gate *apiGate
	wrap := func(rt http.RoundTripper) http.RoundTripper { return rt }
	if o.apiGate {
		gate = newAPIGate(apiGateMaxHold)
		wrap = gate.wrap
	}
	client, dyn, probeClient, host, err := newClient(o.kubeconfig, wrap)
	if err != nil {
		return err
	}
	// Fail fast and clearly when the API server cannot be reached.
	if err := checkAPI(ctx, client, host, o.apiTimeout); err != nil {
		return err
	}

	be, closeBackend, err := newBackend(o)
	if err != nil {
		return err
	}
	defer closeBackend()

	if o.failMode == failClosed {
		res, err := informer.FailClosed(ctx, client, be, o.nodeName)
		if err != nil {
			return err
		}
		log.Info("Fail closed until the first sync", "keptPreviousRules", res.Kept, "isolatedPods", res.Endpoints)
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component, Host: o.nodeName})

	metrics, reg, err := newMetrics()
	if err != nil {
		return err
	}
	reachable, err := newReachableGauge(reg)
	if err != nil {
		return err
	}
	go probeAPI(ctx, readyzProbe(probeClient), o.apiProbePeriod, apiDownProbePeriod, min(o.apiProbePeriod, apiProbeTimeout),
		&apiReachability{log: log.WithName("api"), reachable: reachable, logEvery: apiLogEvery,
			gate: gate, jitter: apiReturnJitter})
	bridge, closeBridge, err := newBridgeWatch(o, reg, recorder, log.WithName("bridge"))
	if err != nil {
		return err
	}
	defer closeBridge()
	bridge.observe(time.Now())
	go bridge.run(ctx, o.bridgeCheck)
	if !o.clusterPolicies {
		dyn = nil
	}
	// After the bootstrap, which needs the backend itself.
	enforcing, closeFollower, err := followEstablished(be, o, newEstablishedMetrics(reg), log.WithName("conntrack"))
	if err != nil {
		return err
	}
	defer closeFollower()
	engineCfg := policy.Config{NodeName: o.nodeName}
	var ifaces *ifaceSource
	if o.sourceValidation != sourceOff {
		if ifaces, err = newIfaceSource(o.sourceValidation, o.cniCacheDir, o.netns); err != nil {
			return err
		}
		defer ifaces.close()
		if _, err := ifaces.scan(); err != nil {
			return err
		}
		engineCfg.Interface = ifaces.Interface
		if fd, ok := be.(forgedDropper); ok {
			if err := registerForgedDrops(reg, fd); err != nil {
				return err
			}
		}
	}
	engine := policy.New(engineCfg)
	enforcing, stopLog, err := startVerdictLog(ctx, o, enforcing, engine, reg, os.Stdout, log.WithName("verdictlog"))
	if err != nil {
		return err
	}
	defer stopLog()
	if _, err := registerPolicyCounters(reg, enforcing, o.counters); err != nil {
		return err
	}
	ctrl, err := informer.New(informer.Config{
		Client:          client,
		Engine:          engine,
		Backend:         enforcing,
		MinSyncInterval: o.minSyncInterval,
		ResyncPeriod:    o.resyncPeriod,
		Recorder:        recorder,
		NodeName:        o.nodeName,
		Metrics:         metrics,
		Logger:          log.WithName("informer"),

		DriftCheckInterval: o.driftCheck,

		Dynamic:           dyn,
		ClusterPolicyPoll: o.clusterPolicyPoll,
	})
	if err != nil {
		return err
	}

	ready := func() error {
		if !ctrl.Ready() {
			return errNotSynced
		}
		return bridge.err()
	}
	servers, err := startServers(ctx, o, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), ready)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
	}()

	if ifaces != nil {
		go watchInterfaces(ctx, ifaces, engine, ctrl.Refresh, sourceRescan, log.WithName("source-validation"))
	}
	log.Info("Starting", "node", o.nodeName, "backend", o.backend, "table", o.tableName,
		"netns", o.netns, "failMode", o.failMode, "established", o.established, "apiServer", host, "apiGate", o.apiGate, "bridgeNetfilter", o.bridgeNetfilter,
		"sourceValidation", o.sourceValidation)
	if err := ctrl.Run(ctx); err != nil {
		return err
	}
	log.Info("Stopped watching", "generation", ctrl.Generation())

	if o.cleanupOnExit {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := be.Cleanup(cctx); err != nil {
			return fmt.Errorf("cleanup on exit: %w", err)
		}
		log.Info("Removed the packet filter rules (--cleanup-on-exit)")
	} else {
		log.Info("Leaving the packet filter rules in place")
	}
	return nil
}

// newClient builds a clientset and a dynamic client (for the cluster-wide
// policy CRDs) from a kubeconfig, or from the in-cluster configuration when
// path is empty; their transport goes through wrap. The probe client has
// the same configuration without wrap.
func newClient(path string, wrap func(http.RoundTripper) http.RoundTripper) (client kubernetes.Interface, dyn dynamic.Interface, probe kubernetes.Interface, host string, err error) {
	var cfg *rest.Config
	if path == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, nil, nil, "", fmt.Errorf("in-cluster configuration (pass --kubeconfig outside a pod): %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, nil, nil, "", fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	cfg.UserAgent = component
	cfg.QPS, cfg.Burst = 20, 40
	probe, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("API client: %w", err)
	}
	cfg.Wrap(wrap)
	client, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("API client: %w", err)
	}
	dyn, err = dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("dynamic API client: %w", err)
	}
	return client, dyn, probe, cfg.Host, nil
}

// checkAPI asks the API server for its version, retrying until timeout.
// Every attempt is bounded and ends with ctx, so that a signal ends the
// wait even when the API server accepts connections and never answers.
func checkAPI(ctx context.Context, client kubernetes.Interface, host string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, apiAttemptTimeout)
		err := client.Discovery().RESTClient().Get().AbsPath("/version").Do(attempt).Error()
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return fmt.Errorf("cannot reach the API server at %s after %v: %w", host, timeout, err)
			}
			return fmt.Errorf("cannot reach the API server at %s: %w", host, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// readyzProbe asks the API server's /readyz once, without client-go's
// retries: one probe, one answer.
func readyzProbe(client kubernetes.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		return client.Discovery().RESTClient().Get().AbsPath("/readyz").MaxRetries(0).Do(ctx).Error()
	}
}

// newBackend opens the packet filter backend, in the namespace of --netns
// when set.
func newBackend(o *options) (backend.Backend, func(), error) {
	netnsFD := 0
	var nsFile *os.File
	if o.netns != "" {
		f, err := os.Open(o.netns)
		if err != nil {
			return nil, nil, fmt.Errorf("--netns: %w", err)
		}
		nsFile = f
		netnsFD = int(f.Fd())
	}
	closeNS := func() {
		if nsFile != nil {
			_ = nsFile.Close()
		}
	}
	if o.backend == "iptables" {
		// Our chains and ipsets in the target namespace; without --netns,
		// the agent's own (the host's, in the DaemonSet).
		ipt, err := iptables.New(iptables.Config{NetNS: netnsFD, AllowCurrentNamespace: netnsFD == 0, Log: o.log.logging()})
		if err != nil {
			closeNS()
			return nil, nil, fmt.Errorf("iptables backend: %w", err)
		}
		return ipt, func() {
			_ = ipt.Close()
			closeNS()
		}, nil
	}
	nft, err := nftables.New(nftables.Config{TableName: o.tableName, NetNS: netnsFD, Log: o.log.logging()})
	if err != nil {
		closeNS()
		return nil, nil, fmt.Errorf("nftables backend: %w", err)
	}
	return nft, func() {
		_ = nft.Close()
		closeNS()
	}, nil
}

// startServers starts the metrics and health servers (one server when
// they share an address).
func startServers(ctx context.Context, o *options, metrics http.Handler, ready func() error) ([]*http.Server, error) {
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if !disabled(o.metricsAddr) {
		mux(o.metricsAddr).Handle("/metrics", metrics)
	}
	if !disabled(o.healthAddr) {
		mx := mux(o.healthAddr)
		mx.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		})
		mx.HandleFunc("/readyz", readyHandler(ready))
	}
	var servers []*http.Server
	for addr, mx := range muxes {
		s, err := serve(ctx, addr, mx)
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// errNotSynced is the readiness error before the first full Sync.
var errNotSynced = errors.New("waiting for the first full sync")

// readyHandler answers 200 while ready returns nil, else 503 with the
// reason.
func readyHandler(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}
}
