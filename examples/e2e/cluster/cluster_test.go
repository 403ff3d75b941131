package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultRBACBindsAgent(t *testing.T) {
	objs, err := decodeAll([]byte(DefaultRBAC))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	binds := false
	for _, o := range objs {
		key := o.GetAPIVersion() + "/" + o.GetKind()
		if _, ok := rbacKinds[key]; !ok {
			t.Errorf("DefaultRBAC holds %s, which ApplyRBAC does not apply", key)
		}
		kinds = append(kinds, o.GetKind())
		if o.GetKind() == "ClusterRoleBinding" && namesAgent(o) {
			binds = true
		}
	}
	if got := strings.Join(kinds, ","); got != "ServiceAccount,ClusterRole,ClusterRoleBinding" {
		t.Errorf("DefaultRBAC kinds: %s", got)
	}
	if !binds {
		t.Error("DefaultRBAC binds nothing to the agent's ServiceAccount")
	}
}

func TestDecodeList(t *testing.T) {
	objs, err := decodeAll([]byte(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: a, namespace: x}
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: b, namespace: x}
---
# only a comment
---
apiVersion: v1
kind: Namespace
metadata: {name: x}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || objs[0].GetName() != "a" || objs[1].GetName() != "b" || objs[2].GetKind() != "Namespace" {
		t.Fatalf("decoded %d objects: %v", len(objs), objs)
	}
}

// The Go harness and build-apiserver.sh must agree on the cache path.
func TestCacheKeyMatchesScript(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum")
	}
	dir, err := apiserverModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ModuleKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `cat go.mod go.sum | sha256sum | cut -c1-16`)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); key != want {
		t.Errorf("ModuleKey = %s, script computes %s", key, want)
	}
	t.Setenv("PALISADE_E2E_CACHE", "/somewhere")
	p, err := CachedAPIServerPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("/somewhere", "kube-apiserver-"+key); p != want {
		t.Errorf("CachedAPIServerPath = %s, want %s", p, want)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("1\n2\n3\n4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := tailFile(p, 2); got != "3\n4" {
		t.Errorf("tail 2 = %q", got)
	}
	if got := tailFile(p, 10); got != "1\n2\n3\n4" {
		t.Errorf("tail 10 = %q", got)
	}
}
