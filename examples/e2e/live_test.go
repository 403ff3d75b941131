package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/palisade-net/palisade/examples/e2e/cluster"
	"github.com/palisade-net/palisade/examples/internal/manifest"
)

// liveDemo builds netpolctl, starts a real API server with the
// network-policy-api CRDs and writes the demo objects (whatifFiles) to it as
// admin: what the tests of netpolctl against a live cluster run on. It
// skips t as cluster.Skip does, and when the CRDs are not available.
func liveDemo(ctx context.Context, t *testing.T) (bin string, c *cluster.Cluster) {
	t.Helper()
	cluster.Skip(t, cluster.Options{})
	crds, err := cluster.NetworkPolicyAPICRDs(ctx, "experimental")
	if err != nil {
		t.Skipf("the network-policy-api CRDs are not available from the Go module cache or proxy: %v", err)
	}
	bin = filepath.Join(t.TempDir(), "netpolctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../netpolctl").CombinedOutput(); err != nil {
		t.Fatalf("go build ../netpolctl: %v\n%s", err, out)
	}
	c = cluster.Start(t, cluster.Options{})
	if _, err := c.InstallCRDs(ctx, time.Minute, crds...); err != nil {
		t.Fatalf("InstallCRDs: %v", err)
	}
	st, err := manifest.Load(whatifFiles...)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	writeState(ctx, t, c.AdminClient(), dyn, st)
	return bin, c
}
