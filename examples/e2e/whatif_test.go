package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/examples/internal/manifest"
)

// The demo shop with its cluster-wide policies: what TestLiveNetpolctl
// writes to the API server and what the file-based runs read.
var whatifFiles = []string{
	"../demo/cluster.yaml", "../demo/policies.yaml",
	"../demo-admin/cluster.yaml", "../demo-admin/policies.yaml",
}

// TestLiveNetpolctl writes the demo objects (NetworkPolicies and the
// network-policy-api kinds) to a real API server and runs netpolctl
// simulate, explain and diff against it with the admin kubeconfig: every
// output must equal the output for the same objects read from files. It
// also checks the errors a user meets: an identity without RBAC (the
// refused resource is named), a pod that does not exist.
func TestLiveNetpolctl(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin, c := liveDemo(ctx, t)

	files := func(args ...string) []string {
		var out []string
		for _, f := range whatifFiles {
			out = append(out, "-f", f)
		}
		return append(out, args...)
	}
	live := func(args ...string) []string { return append([]string{"--kubeconfig", c.AdminKubeconfig}, args...) }
	same := func(what string, wantCode int, args ...string) string {
		t.Helper()
		fromFiles := run(t, bin, append(args, files()...)...)
		fromLive := run(t, bin, append(args, live()...)...)
		if fromFiles.code != wantCode || fromLive.code != wantCode {
			t.Fatalf("%s: exit codes %d (files) and %d (live), want %d\nfiles stderr: %s\nlive stderr: %s",
				what, fromFiles.code, fromLive.code, wantCode, fromFiles.stderr, fromLive.stderr)
		}
		if fromFiles.stdout != fromLive.stdout {
			t.Errorf("%s: live output differs from the files'\nfiles:\n%s\nlive:\n%s", what, fromFiles.stdout, fromLive.stdout)
		}
		if strings.TrimSpace(fromLive.stdout) == "" {
			t.Errorf("%s: no output", what)
		}
		return fromLive.stdout
	}

	// simulate: every flow of both demos.
	flowsFile := filepath.Join(t.TempDir(), "flows.txt")
	var allFlows []byte
	for _, f := range []string{"../demo/flows.txt", "../demo-admin/flows.txt"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		allFlows = append(allFlows, b...)
	}
	if err := os.WriteFile(flowsFile, allFlows, 0o644); err != nil {
		t.Fatal(err)
	}
	out := same("simulate", 0, "simulate", "--flows", flowsFile, "-o", "jsonl")
	t.Logf("simulate: %d flows decided alike from files and from the API server", strings.Count(out, "\n"))

	// explain: "why can't shop/api-1 reach shop/db-0 on 6379?", and an
	// Admin-tier decision, with tier, policy and rule at each end.
	why := same("explain denied", 0, "explain", "shop/api-1", "shop/db-0", "6379", "TCP")
	for _, want := range []string{"DENY", "Ingress at shop/db-0: denied", "NetworkPolicy/shop/db-from-frontend", "peer not in"} {
		if !strings.Contains(why, want) {
			t.Errorf("explain shop/api-1 shop/db-0 6379 TCP: no %q in\n%s", want, why)
		}
	}
	admin := same("explain admin", 0, "explain", "analytics/report-1", "vault/secrets-0", "8200", "TCP")
	for _, want := range []string{"DENY", "(Admin tier)", "AdminNetworkPolicy/"} {
		if !strings.Contains(admin, want) {
			t.Errorf("explain analytics/report-1 vault/secrets-0 8200 TCP: no %q in\n%s", want, admin)
		}
	}

	// diff: an Admin-tier deny on the database, and a deletion.
	dir := t.TempDir()
	anp := filepath.Join(dir, "freeze-db.yaml")
	if err := os.WriteFile(anp, []byte(`apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: freeze-db}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {role: db}}}}
  ingress:
  - {name: no-one, action: Deny, from: [{namespaces: {}}]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := same("diff admin deny", 1, "diff", "--proposed", anp, "-o", "jsonl")
	if !strings.Contains(d, `"src":"shop/web-1","dst":"shop/db-0","port":6379,"protocol":"TCP","portName":"redis","before":"allow","after":"deny"`) ||
		!strings.Contains(d, `AdminNetworkPolicy/freeze-db rule 0 \"no-one\" (Admin tier)`) {
		t.Errorf("diff --proposed freeze-db: web-1 -> db-0 6379 not cut by freeze-db:\n%s", d)
	}
	same("diff deletion", 1, "diff", "--delete", "networkpolicy/shop/db-from-frontend", "-n", "shop")

	// A pod that does not exist, and an identity the API server refuses.
	r := run(t, bin, live("explain", "shop/web-9", "shop/db-0", "6379", "TCP")...)
	if r.code != 1 || !strings.Contains(r.stderr, "pod shop/web-9 not found in the API server at "+c.Server) {
		t.Errorf("explain of a missing pod: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, bin, "explain", "--kubeconfig", c.AgentKubeconfig, "shop/web-1", "shop/db-0", "6379", "TCP")
	if r.code != 1 || !strings.Contains(r.stderr, "forbidden to this identity") {
		t.Errorf("explain without RBAC: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, res := range []string{"namespaces", "pods", "nodes", "networkpolicies.networking.k8s.io"} {
		if !strings.Contains(r.stderr, "list "+res+": forbidden to this identity") {
			t.Errorf("explain without RBAC: the refused %s are not named in %q", res, r.stderr)
		}
	}
	r = run(t, bin, "diff", "--kubeconfig", c.AgentKubeconfig, "--proposed", anp)
	if r.code != 2 || !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("diff without RBAC: exit %d (want 2), stderr %q", r.code, r.stderr)
	}
}

type runResult struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, bin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("netpolctl %s: %v", strings.Join(args, " "), err)
	}
	return runResult{stdout.String(), stderr.String(), code}
}

// writeState creates every object of st in the API server, as admin: pods
// with their status (IPs, phase) and nodes with their addresses, as a
// kubelet would report them.
func writeState(ctx context.Context, t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface, st *manifest.State) {
	t.Helper()
	for _, ns := range st.Namespaces {
		ns = ns.DeepCopy()
		ns.ResourceVersion = ""
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("Namespace %s: %v", ns.Name, err)
		}
	}
	for _, n := range st.Nodes {
		created, err := cs.CoreV1().Nodes().Create(ctx, n.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("Node %s: %v", n.Name, err)
		}
		created.Status = n.Status
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("Node %s status: %v", n.Name, err)
		}
	}
	for _, p := range st.Pods {
		if err := createPodWithStatus(ctx, cs, p); err != nil {
			t.Fatalf("Pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	for _, np := range st.NetworkPolicies {
		if _, err := cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np.DeepCopy(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("NetworkPolicy %s/%s: %v", np.Namespace, np.Name, err)
		}
	}
	create := func(gvr schema.GroupVersionResource, obj runtime.Object, v01Peers bool) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		if v01Peers {
			toV01Peers(m)
		}
		u := &unstructured.Unstructured{Object: m}
		if _, err := dyn.Resource(gvr).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for _, p := range st.AdminNetworkPolicies {
		create(anpGVR, p, true)
	}
	for _, p := range st.BaselineAdminNetworkPolicies {
		create(banpGVR, p, true)
	}
	for _, p := range st.ClusterNetworkPolicies {
		create(cnpGVR, p, false)
	}
}

// toV01Peers rewrites the peers of an AdminNetworkPolicy or
// BaselineAdminNetworkPolicy from the v1alpha1 Go types' shape to the shape
// of the v1alpha1 CRDs installed (network-policy-api v0.1.x), which the
// API server validates: namespaces: S becomes namespaces: {namespaceSelector:
// S}, and pods: {namespaceSelector: S, ...} becomes pods: {namespaces:
// {namespaceSelector: S}, ...}. The node agent and netpolctl read them back
// (informer.DecodeAdminNetworkPolicy).
func toV01Peers(obj map[string]any) {
	for _, dir := range []struct{ rules, peers string }{{"ingress", "from"}, {"egress", "to"}} {
		rules, _, _ := unstructured.NestedSlice(obj, "spec", dir.rules)
		for _, r := range rules {
			peers, _ := r.(map[string]any)[dir.peers].([]any)
			for _, p := range peers {
				peer := p.(map[string]any)
				if ns, ok := peer["namespaces"]; ok {
					peer["namespaces"] = map[string]any{"namespaceSelector": ns}
				}
				if pods, ok := peer["pods"].(map[string]any); ok {
					pods["namespaces"] = map[string]any{"namespaceSelector": pods["namespaceSelector"]}
					delete(pods, "namespaceSelector")
				}
			}
		}
		if rules != nil {
			_ = unstructured.SetNestedSlice(obj, rules, "spec", dir.rules)
		}
	}
}
