package cni

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/palisade-net/palisade/examples/e2e/cluster"
)

const (
	// DebianPluginDir is where Debian's containernetworking-plugins
	// package installs the plugins.
	DebianPluginDir = "/usr/lib/cni"
	// FlannelModule and FlannelVersion name the flannel plugin's source:
	// the containernetworking/plugins release before it moved.
	FlannelModule  = "github.com/containernetworking/plugins"
	FlannelVersion = "v0.9.1"
	flannelPackage = FlannelModule + "/plugins/meta/flannel"
)

// MissingPlugins says what is missing for the Debian plugins this package
// uses (bridge, host-local) to run from dir, or "" when nothing is.
func MissingPlugins(dir string) string {
	var missing []string
	for _, p := range []string{"bridge", "host-local"} {
		if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("CNI plugins %s not found in %s (install Debian's containernetworking-plugins; .ci/run does)",
		strings.Join(missing, ", "), dir)
}

// FlannelPath returns the flannel plugin's binary,
// <cache>/cni-flannel-<version>/flannel, building it first when absent
// (go install of FlannelModule's plugins/meta/flannel at FlannelVersion,
// through the module proxy; the build goes to a temporary directory beside
// it and is renamed into place, so concurrent test processes never see a
// partial binary).
func FlannelPath(ctx context.Context) (string, error) {
	cache, err := cluster.CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "cni-flannel-"+FlannelVersion)
	bin := filepath.Join(dir, "flannel")
	if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", flannelPackage+"@"+FlannelVersion)
	// A module-mode install of a released version: no workspace, no
	// go.mod of ours involved.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", flannelPackage, FlannelVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "flannel"), bin); err != nil {
		return "", err
	}
	return bin, nil
}
