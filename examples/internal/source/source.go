package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"

	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/palisade-net/palisade/examples/internal/manifest"
	"github.com/palisade-net/palisade/informer"
)

// Flags choose the source: files or a live cluster. The zero value has no
// source; Register adds the flags to a command.
type Flags struct {
	// Files are read as one cluster state (-f).
	Files []string
	// Kubeconfig is the kubeconfig file of a live cluster (--kubeconfig).
	Kubeconfig string
	// Context is the kubeconfig context to use (--context); empty: the
	// file's current context.
	Context string
	// Warn, when set, receives non-fatal notes on live objects (see List).
	Warn func(string)
}

// Register adds -f/--filename, --kubeconfig and --context to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&f.Files, "filename", "f", nil, "YAML/JSON file or directory of cluster objects (repeatable)")
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "read the objects from the live cluster of this kubeconfig instead of files (in a pod, the in-cluster configuration is used when neither -f nor --kubeconfig is given)")
	fs.StringVar(&f.Context, "context", "", "the kubeconfig context to use (default: its current context)")
}

// Live reports whether the flags name a live cluster: --kubeconfig, or no
// -f in a pod.
func (f *Flags) Live() bool {
	return f.Kubeconfig != "" || (len(f.Files) == 0 && inCluster())
}

// inCluster reports whether the in-cluster configuration is present.
func inCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// Load returns the cluster state the flags name. Giving both -f and
// --kubeconfig, or --context without --kubeconfig, is an error, and so is
// giving nothing outside a pod.
func (f *Flags) Load(ctx context.Context) (*manifest.State, error) {
	switch {
	case len(f.Files) > 0 && f.Kubeconfig != "":
		return nil, errors.New("give either -f or --kubeconfig, not both")
	case f.Context != "" && f.Kubeconfig == "":
		return nil, errors.New("--context needs --kubeconfig")
	case len(f.Files) > 0:
		return manifest.Load(f.Files...)
	case !f.Live():
		return nil, errors.New("no input: give -f PATH or --kubeconfig PATH")
	}
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	return List(ctx, cfg, f.Warn)
}

// Describe names the source for messages: the files, or the API server.
func (f *Flags) Describe() string {
	if len(f.Files) > 0 {
		return fmt.Sprint(f.Files)
	}
	if cfg, err := f.RESTConfig(); err == nil {
		return "the API server at " + cfg.Host
	}
	return "the cluster"
}

// RESTConfig returns the client configuration of the live cluster:
// --kubeconfig (and --context), else the in-cluster configuration.
func (f *Flags) RESTConfig() (*rest.Config, error) {
	if f.Kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: f.Kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: f.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", f.Kubeconfig, err)
	}
	return cfg, nil
}

// DefaultRequestTimeout bounds each request List makes when cfg sets no
// Timeout: an API server that accepts connections and never answers makes
// an error, not a hang.
const DefaultRequestTimeout = 30 * time.Second

// List lists the cluster state once from the API server of cfg. Objects
// are recorded with the source "<kind> <namespace/name> at <server>".
// warn (nil: dropped) receives the fields of cluster-wide policies that are
// enforced otherwise than written (see informer.DecodeAdminNetworkPolicy).
// An empty cluster gives an empty state.
func List(ctx context.Context, cfg *rest.Config, warn func(string)) (*manifest.State, error) {
	if warn == nil {
		warn = func(string) {}
	}
	if cfg.Timeout == 0 {
		cfg = rest.CopyConfig(cfg)
		cfg.Timeout = DefaultRequestTimeout
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server %s: %w", cfg.Host, err)
	}
	l := &lister{host: cfg.Host, warn: warn, st: &manifest.State{Sources: map[string]string{}}}
	core, netv1 := cs.CoreV1(), cs.NetworkingV1()
	st := l.st
	lists := []func() error{
		func() error {
			return l.list(ctx, "namespaces", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return core.Namespaces().List(ctx, o)
			}, collect(l, "Namespace", &st.Namespaces))
		},
		func() error {
			return l.list(ctx, "pods", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return core.Pods(metav1.NamespaceAll).List(ctx, o)
			}, collect(l, "Pod", &st.Pods))
		},
		func() error {
			return l.list(ctx, "nodes", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return core.Nodes().List(ctx, o)
			}, collect(l, "Node", &st.Nodes))
		},
		func() error {
			return l.list(ctx, "networkpolicies.networking.k8s.io", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return netv1.NetworkPolicies(metav1.NamespaceAll).List(ctx, o)
			}, collect(l, "NetworkPolicy", &st.NetworkPolicies))
		},
	}
	// Every refused resource is named; any other error (the API server
	// cannot be reached) ends the listing.
	var errs []error
	for _, list := range lists {
		err := list()
		errs = append(errs, err)
		if err != nil && !errors.Is(err, errForbidden) {
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	served, err := informer.ServedClusterPolicyKinds(cs.Discovery())
	if err != nil {
		return nil, l.explain(err, "discovery", "policy.networking.k8s.io")
	}
	for _, k := range informer.ClusterPolicyKinds {
		if !served[k.Kind] {
			continue
		}
		var errs []error
		res := k.Resource.Resource + "." + k.Resource.Group
		err := l.list(ctx, res, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return dyn.Resource(k.Resource).List(ctx, o)
		}, func(obj runtime.Object) {
			u := obj.(*unstructured.Unstructured)
			if u.GetKind() == "" { // items of a dynamic list carry their kind; be sure
				u.SetKind(k.Kind)
			}
			errs = append(errs, l.addClusterPolicy(k.Kind, u))
		})
		if err = errors.Join(append([]error{err}, errs...)...); err != nil {
			return nil, err
		}
	}
	l.st.Sort()
	return l.st, nil
}

// lister fills one State from one API server.
type lister struct {
	host string
	warn func(string)
	st   *manifest.State
}

func (l *lister) add(kind, namespace, name string) {
	obj := kind + " " + name
	if namespace != "" {
		obj = kind + " " + namespace + "/" + name
	}
	l.st.Sources[manifest.Key(kind, namespace, name)] = obj + " at " + l.host
}

// collect returns the function that records each listed object of a kind
// and appends it to into.
func collect[T interface {
	runtime.Object
	metav1.Object
}](l *lister, kind string, into *[]T) func(runtime.Object) {
	return func(obj runtime.Object) {
		o := obj.(T)
		l.add(kind, o.GetNamespace(), o.GetName())
		*into = append(*into, o)
	}
}

// list lists every page of one resource, calling each for every item.
func (l *lister) list(ctx context.Context, resource string, fn pager.ListPageFunc, each func(runtime.Object)) error {
	p := pager.New(fn)
	p.PageSize = 500
	err := p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		each(obj)
		return nil
	})
	if err != nil {
		return l.explain(err, "list", resource)
	}
	return nil
}

// addClusterPolicy converts one cluster-wide policy as the node agent does
// and adds it. An object that cannot be converted is an error: enforcing
// without it could miss a Deny.
func (l *lister) addClusterPolicy(kind string, u *unstructured.Unstructured) error {
	var notes []string
	var err error
	switch kind {
	case "AdminNetworkPolicy":
		var p *v1alpha1.AdminNetworkPolicy
		if p, notes, err = informer.DecodeAdminNetworkPolicy(u); err == nil {
			l.st.AdminNetworkPolicies = append(l.st.AdminNetworkPolicies, p)
		}
	case "BaselineAdminNetworkPolicy":
		var p *v1alpha1.BaselineAdminNetworkPolicy
		if p, notes, err = informer.DecodeBaselineAdminNetworkPolicy(u); err == nil {
			l.st.BaselineAdminNetworkPolicies = append(l.st.BaselineAdminNetworkPolicies, p)
		}
	case "ClusterNetworkPolicy":
		var p *v1beta1.ClusterNetworkPolicy
		if p, notes, err = informer.DecodeClusterNetworkPolicy(u); err == nil {
			l.st.ClusterNetworkPolicies = append(l.st.ClusterNetworkPolicies, p)
		}
	}
	for _, n := range notes {
		l.warn(fmt.Sprintf("warning: %s %s at %s: %s", kind, u.GetName(), l.host, n))
	}
	if err != nil {
		return fmt.Errorf("API server %s: %w", l.host, err)
	}
	l.add(kind, "", u.GetName())
	return nil
}

// errForbidden marks an RBAC refusal in List's errors.
var errForbidden = errors.New("forbidden to this identity")

// explain turns a client error into one that says what failed and why.
func (l *lister) explain(err error, verb, resource string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("API server %s: %s %s: %w (netpolctl needs list on namespaces, pods, nodes, "+
			"networkpolicies.networking.k8s.io and the served policy.networking.k8s.io kinds): %w", l.host, verb, resource, errForbidden, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("API server %s: %s %s: not authenticated (check the kubeconfig's credentials): %w", l.host, verb, resource, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("API server %s: %s %s: no answer in time: %w", l.host, verb, resource, err)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Errorf("API server %s: %s %s: %w", l.host, verb, resource, err)
	}
	return fmt.Errorf("cannot reach the API server at %s (%s %s): %w", l.host, verb, resource, err)
}
