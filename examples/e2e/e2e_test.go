// Package e2e holds Palisade's end-to-end tests: a real etcd and
// kube-apiserver on loopback (package cluster), the node agent running with
// its ServiceAccount's RBAC, and traffic through the lab's network
// namespaces. They need root, /usr/bin/etcd (Debian's etcd-server) and the
// kube-apiserver built by build-apiserver.sh, and skip, saying which is
// missing, otherwise.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

// rbacPaths are the node agent's manifests; ApplyRBAC falls back to
// cluster.DefaultRBAC while they do not exist.
var rbacPaths = []string{filepath.Join("..", "node-agent", "deploy")}

func TestAPIServerStarts(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	src, err := c.ApplyRBAC(ctx, rbacPaths...)
	if err != nil {
		t.Fatalf("ApplyRBAC: %v", err)
	}
	t.Logf("RBAC from %s", src)

	admin := c.AdminClient()
	v, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver %s at %s", v.GitVersion, c.Server)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e", Labels: map[string]string{"team": "a"}}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "e2e", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:   "node-0",
			Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}}}},
		},
	}
	if _, err := admin.CoreV1().Pods("e2e").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: "e2e"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := admin.NetworkingV1().NetworkPolicies("e2e").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The API server labels every namespace with its name.
	got, err := admin.CoreV1().Namespaces().Get(ctx, "e2e", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["kubernetes.io/metadata.name"] != "e2e" {
		t.Errorf("namespace labels %v lack kubernetes.io/metadata.name=e2e", got.Labels)
	}

	agent := c.AgentClient()
	// RBAC changes reach the authorizer through an informer: allow a moment.
	waitAllowed(ctx, t, "agent lists pods", func() error {
		_, err := agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		return err
	})

	t.Run("AgentMayRead", func(t *testing.T) {
		checkList(ctx, t, agent)
		checkWatch(ctx, t, agent)
	})
	t.Run("AgentMayWriteEvents", func(t *testing.T) {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: "deny-all.", Namespace: "e2e"},
			InvolvedObject: corev1.ObjectReference{Kind: "NetworkPolicy", APIVersion: "networking.k8s.io/v1", Namespace: "e2e", Name: "deny-all"},
			Reason:         "E2E",
			Message:        "written by the node agent's identity",
			Type:           corev1.EventTypeNormal,
			Source:         corev1.EventSource{Component: "palisade-node-agent"},
		}
		if _, err := agent.CoreV1().Events("e2e").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Errorf("agent creates an Event: %v", err)
		}
	})
	t.Run("AgentLeastPrivilege", func(t *testing.T) {
		forbidden := map[string]func() error{
			"create pod": func() error {
				p := pod.DeepCopy()
				p.ResourceVersion = ""
				p.Name = "intruder"
				_, err := agent.CoreV1().Pods("e2e").Create(ctx, p, metav1.CreateOptions{})
				return err
			},
			"delete pod": func() error {
				return agent.CoreV1().Pods("e2e").Delete(ctx, "web", metav1.DeleteOptions{})
			},
			"update networkpolicy": func() error {
				cur, err := admin.NetworkingV1().NetworkPolicies("e2e").Get(ctx, "deny-all", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				cur.Spec.PolicyTypes = nil
				_, err = agent.NetworkingV1().NetworkPolicies("e2e").Update(ctx, cur, metav1.UpdateOptions{})
				return err
			},
			"list secrets": func() error {
				_, err := agent.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
				return err
			},
			"label namespace": func() error {
				_, err := agent.CoreV1().Namespaces().Patch(ctx, "e2e", "application/merge-patch+json",
					[]byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
				return err
			},
		}
		for what, do := range forbidden {
			if err := do(); !apierrors.IsForbidden(err) {
				t.Errorf("agent may %s: got %v, want Forbidden", what, err)
			}
		}
		// Still there, untouched.
		if _, err := admin.CoreV1().Pods("e2e").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			t.Errorf("pod web: %v", err)
		}
	})
	// ApplyRBAC reads manifests from a directory, applies the RBAC objects
	// and skips the rest (no controller would run a DaemonSet here).
	t.Run("ApplyRBACFromFiles", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string]string{
			"daemonset.yaml": `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: palisade-node-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: c, image: example.invalid/none}]}
`,
			"rbac.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-configmaps, namespace: e2e}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-configmaps, namespace: e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}
subjects: [{kind: ServiceAccount, name: palisade-node-agent, namespace: kube-system}]
`,
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		src, err := c.ApplyRBAC(ctx, filepath.Join(dir, "missing"), dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RBAC from %s", src)
		waitAllowed(ctx, t, "agent lists configmaps in e2e", func() error {
			_, err := agent.CoreV1().ConfigMaps("e2e").List(ctx, metav1.ListOptions{})
			return err
		})
		if _, err := admin.AppsV1().DaemonSets("kube-system").Get(ctx, "palisade-node-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("DaemonSet: got %v, want NotFound (ApplyRBAC applies RBAC objects only)", err)
		}
	})
}

func checkList(ctx context.Context, t *testing.T, agent kubernetes.Interface) {
	t.Helper()
	pods, err := agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("agent lists pods: %v", err)
	} else if len(pods.Items) != 1 || pods.Items[0].Name != "web" {
		t.Errorf("agent lists pods: %d items, want web", len(pods.Items))
	}
	if _, err := agent.CoreV1().Pods("e2e").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("agent gets pod: %v", err)
	}
	if _, err := agent.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("agent lists namespaces: %v", err)
	}
	nps, err := agent.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("agent lists networkpolicies: %v", err)
	} else if len(nps.Items) != 1 {
		t.Errorf("agent lists networkpolicies: %d items, want 1", len(nps.Items))
	}
}

// checkWatch opens a watch of each kind as the agent and waits for the
// initial ADDED event of the object created above.
func checkWatch(ctx context.Context, t *testing.T, agent kubernetes.Interface) {
	t.Helper()
	watches := map[string]func(metav1.ListOptions) (watch.Interface, error){
		"pods": func(o metav1.ListOptions) (watch.Interface, error) { return agent.CoreV1().Pods("").Watch(ctx, o) },
		"namespaces": func(o metav1.ListOptions) (watch.Interface, error) {
			return agent.CoreV1().Namespaces().Watch(ctx, o)
		},
		"networkpolicies": func(o metav1.ListOptions) (watch.Interface, error) {
			return agent.NetworkingV1().NetworkPolicies("").Watch(ctx, o)
		},
	}
	for what, open := range watches {
		// resourceVersion "0" replays the current state as ADDED events.
		w, err := open(metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			t.Errorf("agent watches %s: %v", what, err)
			continue
		}
		select {
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type != "ADDED" {
				t.Errorf("agent watches %s: first event %v (open %v), want ADDED", what, ev.Type, ok)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("agent watches %s: no event in 10s", what)
		}
		w.Stop()
	}
}

func waitAllowed(ctx context.Context, t *testing.T, what string, do func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := do()
		if err == nil {
			return
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
