package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The network-policy-api releases whose CRDs the suite installs: the
// ClusterNetworkPolicy CRD (v1beta1) of the current release, and the
// AdminNetworkPolicy / BaselineAdminNetworkPolicy CRDs (v1alpha1) of the
// last release that ships them.
const (
	networkPolicyAPIModule = "sigs.k8s.io/network-policy-api"
	CNPRelease             = "v0.3.0"
	ANPRelease             = "v0.1.1"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// NetworkPolicyAPICRDs returns the paths of the three CRD files, taken from
// the Go module cache (`go mod download` fetches the releases through the
// module proxy when they are not cached), so that no copy of them lives in
// this repository. channel is the ClusterNetworkPolicy CRD's release
// channel: "standard", or "experimental" (a superset of standard that adds
// the `nodes` and `domainNames` egress peers and destinationNamedPort).
func NetworkPolicyAPICRDs(ctx context.Context, channel string) ([]string, error) {
	if channel != "standard" && channel != "experimental" {
		return nil, fmt.Errorf("channel %q: want standard or experimental", channel)
	}
	dir := func(version string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", networkPolicyAPIModule+"@"+version)
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go mod download %s@%s: %w", networkPolicyAPIModule, version, err)
		}
		var info struct{ Dir, Error string }
		if err := json.Unmarshal(out, &info); err != nil {
			return "", fmt.Errorf("go mod download %s@%s: %w", networkPolicyAPIModule, version, err)
		}
		if info.Error != "" || info.Dir == "" {
			return "", fmt.Errorf("go mod download %s@%s: %s", networkPolicyAPIModule, version, info.Error)
		}
		return info.Dir, nil
	}
	cnp, err := dir(CNPRelease)
	if err != nil {
		return nil, err
	}
	anp, err := dir(ANPRelease)
	if err != nil {
		return nil, err
	}
	paths := []string{
		filepath.Join(cnp, "config", "crd", channel, "policy.networking.k8s.io_clusternetworkpolicies.yaml"),
		filepath.Join(anp, "config", "crd", "policy.networking.k8s.io_adminnetworkpolicies.yaml"),
		filepath.Join(anp, "config", "crd", "policy.networking.k8s.io_baselineadminnetworkpolicies.yaml"),
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// InstallCRDs creates the CustomResourceDefinitions in the files (as admin)
// and waits until the API server serves each of them (condition
// Established), at most timeout. It returns the names of the CRDs.
func (c *Cluster) InstallCRDs(ctx context.Context, timeout time.Duration, paths ...string) ([]string, error) {
	dyn, err := c.adminDynamic()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		objs, err := decodeAll(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := dyn.Resource(crdGVR).Create(ctx, o, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("%s: create CRD %s: %w", p, o.GetName(), err)
			}
			names = append(names, o.GetName())
		}
	}
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		for {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			if time.Now().After(deadline) {
				return names, fmt.Errorf("CRD %s not established after %v (last error %v)", name, timeout, err)
			}
			select {
			case <-ctx.Done():
				return names, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return names, nil
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}
