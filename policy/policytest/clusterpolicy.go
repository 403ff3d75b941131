package policytest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// Cluster-wide policies are written in tests as the YAML an administrator
// writes (the spec only, or a whole object): shorter than Go literals and
// read the same way as the API's documentation. The parse is strict, so a
// misspelt field fails the test instead of silently vanishing. YAML reads
// an unquoted y, n, yes, no, on or off as a boolean: quote such label
// values ({ns: "y"}).

// ANP returns an AdminNetworkPolicy named name with the spec written in YAML.
// It panics on YAML that does not parse into the spec: test data is fixed.
func ANP(name, spec string) *v1alpha1.AdminNetworkPolicy {
	o := &v1alpha1.AdminNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	mustParse("AdminNetworkPolicy "+name, spec, &o.Spec)
	return o
}

// BANP returns a BaselineAdminNetworkPolicy named name (the API allows only
// "default") with the spec written in YAML. It panics on bad YAML.
func BANP(name, spec string) *v1alpha1.BaselineAdminNetworkPolicy {
	o := &v1alpha1.BaselineAdminNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	mustParse("BaselineAdminNetworkPolicy "+name, spec, &o.Spec)
	return o
}

// CNP returns a ClusterNetworkPolicy named name with the spec written in
// YAML. It panics on bad YAML.
func CNP(name, spec string) *v1beta1.ClusterNetworkPolicy {
	o := &v1beta1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	mustParse("ClusterNetworkPolicy "+name, spec, &o.Spec)
	return o
}

// Node returns a node with the given labels and InternalIP addresses.
func Node(name string, labels map[string]string, internalIPs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	for _, ip := range internalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func mustParse(what, text string, into any) {
	if err := yaml.UnmarshalStrict([]byte(dedent(text)), into); err != nil {
		panic(fmt.Sprintf("%s: %v", what, err))
	}
}

// dedent removes the indentation of the first non-blank line from every
// line, so that YAML can sit indented in Go source. Tabs count as one
// column each, like spaces.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent = len(l) - len(strings.TrimLeft(l, " \t"))
		break
	}
	if indent <= 0 {
		return s
	}
	for i, l := range lines {
		if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
			lines[i] = strings.ReplaceAll(l[indent:], "\t", "  ")
		} else {
			lines[i] = strings.TrimLeft(l, " \t")
		}
	}
	return strings.Join(lines, "\n")
}
