// Package manifest reads cluster state from YAML or JSON files: Namespaces,
// Pods, Nodes, NetworkPolicies, and the cluster-wide policies of
// policy.networking.k8s.io (ClusterNetworkPolicy v1beta1,
// AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1), alone, in
// multi-document files, in Lists, or in directories of such files. It is what netpolctl and the example suites read
// their inputs with. Errors name the file, the document and the field.
//
// Propose overlays proposed objects on a state (netpolctl diff): new and
// changed objects replace, and objects annotated DeleteAnnotation (or keys
// of ParseDelete) delete.
package manifest

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/network-policy-api/apis/v1alpha1"
	"sigs.k8s.io/network-policy-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/palisade-net/palisade/informer"
)

// State is a complete cluster state: every object read, by kind, sorted by
// namespace and name.
type State struct {
	Namespaces      []*corev1.Namespace
	Pods            []*corev1.Pod
	NetworkPolicies []*networkingv1.NetworkPolicy
	// Nodes are read for the `nodes` peers of cluster-wide policies (their
	// labels and status.addresses).
	Nodes                        []*corev1.Node
	AdminNetworkPolicies         []*v1alpha1.AdminNetworkPolicy
	BaselineAdminNetworkPolicies []*v1alpha1.BaselineAdminNetworkPolicy
	ClusterNetworkPolicies       []*v1beta1.ClusterNetworkPolicy
	// Sources maps Key(kind, namespace, name) to where the object was read
	// ("file.yaml#3" for the third document).
	Sources map[string]string
}

// Key identifies an object of a kind.
func Key(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// Source returns where an object was read, or "" when unknown.
func (s *State) Source(kind, namespace, name string) string {
	return s.Sources[Key(kind, namespace, name)]
}

// Pod returns the pod namespace/name, or nil.
func (s *State) Pod(namespace, name string) *corev1.Pod {
	i, ok := slices.BinarySearchFunc(s.Pods, [2]string{namespace, name}, func(p *corev1.Pod, k [2]string) int {
		return cmp.Or(cmp.Compare(p.Namespace, k[0]), cmp.Compare(p.Name, k[1]))
	})
	if !ok {
		return nil
	}
	return s.Pods[i]
}

// Load reads every path (a file, or a directory whose *.yaml, *.yml and
// *.json files are read in lexical order; subdirectories are not read) into one State. An
// object defined twice is an error.
func Load(paths ...string) (*State, error) {
	st := &State{Sources: map[string]string{}}
	var errs []error
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			errs = append(errs, st.loadFile(f))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	st.sort()
	return st, nil
}

func expand(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", path)
	}
	slices.Sort(files)
	return files, nil
}

func (st *State) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return st.loadDocuments(path, data)
}

// LoadBytes reads one file's content (named name in errors) into st.
func (st *State) loadDocuments(name string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var errs []error
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s#%d: %w", name, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		src := fmt.Sprintf("%s#%d", name, doc)
		jsonDoc, err := yaml.YAMLToJSONStrict(raw) // duplicate fields are errors
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		errs = append(errs, st.add(src, jsonDoc))
	}
	return errors.Join(errs...)
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// add decodes one JSON object (or List) read at src.
func (st *State) add(src string, doc []byte) error {
	if string(bytes.TrimSpace(doc)) == "null" {
		return nil
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	switch {
	case tm.Kind == "":
		return fmt.Errorf("%s: kind: Required value", src)
	case tm.APIVersion == "":
		return fmt.Errorf("%s: %s: apiVersion: Required value", src, tm.Kind)
	case tm.Kind == "List" || strings.HasSuffix(tm.Kind, "List"):
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(doc, &list); err != nil {
			return fmt.Errorf("%s: %s: %w", src, tm.Kind, err)
		}
		var errs []error
		for i, item := range list.Items {
			errs = append(errs, st.add(fmt.Sprintf("%s items[%d]", src, i), item))
		}
		return errors.Join(errs...)
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	switch gvk {
	case "v1/Namespace":
		ns := &corev1.Namespace{}
		if err := decode(src, tm.Kind, doc, ns); err != nil {
			return err
		}
		if err := requireName(src, tm.Kind, &ns.ObjectMeta, false); err != nil {
			return err
		}
		ns.Namespace = ""
		return st.record(src, tm.Kind, &ns.ObjectMeta, func() { st.Namespaces = append(st.Namespaces, ns) })
	case "v1/Pod":
		pod := &corev1.Pod{}
		if err := decode(src, tm.Kind, doc, pod); err != nil {
			return err
		}
		if err := requireName(src, tm.Kind, &pod.ObjectMeta, true); err != nil {
			return err
		}
		return st.record(src, tm.Kind, &pod.ObjectMeta, func() { st.Pods = append(st.Pods, pod) })
	case "networking.k8s.io/v1/NetworkPolicy":
		np := &networkingv1.NetworkPolicy{}
		if err := decode(src, tm.Kind, doc, np); err != nil {
			return err
		}
		if err := requireName(src, tm.Kind, &np.ObjectMeta, true); err != nil {
			return err
		}
		return st.record(src, tm.Kind, &np.ObjectMeta, func() { st.NetworkPolicies = append(st.NetworkPolicies, np) })
	case "v1/Node":
		return addClusterScoped(st, src, tm.Kind, doc, &corev1.Node{}, &st.Nodes)
	case v1alpha1.GroupVersion.String() + "/AdminNetworkPolicy":
		doc, err := v01Peers(src, tm.Kind, doc)
		if err != nil {
			return err
		}
		return addClusterScoped(st, src, tm.Kind, doc, &v1alpha1.AdminNetworkPolicy{}, &st.AdminNetworkPolicies)
	case v1alpha1.GroupVersion.String() + "/BaselineAdminNetworkPolicy":
		doc, err := v01Peers(src, tm.Kind, doc)
		if err != nil {
			return err
		}
		return addClusterScoped(st, src, tm.Kind, doc, &v1alpha1.BaselineAdminNetworkPolicy{}, &st.BaselineAdminNetworkPolicies)
	case v1beta1.GroupVersion.String() + "/ClusterNetworkPolicy":
		return addClusterScoped(st, src, tm.Kind, doc, &v1beta1.ClusterNetworkPolicy{}, &st.ClusterNetworkPolicies)
	}
	return fmt.Errorf("%s: apiVersion %q kind %q: not supported (want v1 Namespace, Pod or Node, networking.k8s.io/v1 NetworkPolicy, "+
		"policy.networking.k8s.io/v1beta1 ClusterNetworkPolicy, policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy or "+
		"BaselineAdminNetworkPolicy, or a List of them)", src, tm.APIVersion, tm.Kind)
}

// v01Peers rewrites the peers of an AdminNetworkPolicy or
// BaselineAdminNetworkPolicy written in the shape of the network-policy-api
// v0.1.x CRDs (namespaces: {namespaceSelector: S}), which `kubectl get -o
// yaml` prints on clusters that serve them, into the shape of the v1alpha1
// types, as the node agent does (informer.UpgradeV01Peers). A peer the
// agent could only enforce otherwise than written (sameLabels,
// notSameLabels) is an error here: a file should say what it means. A
// document that is not a JSON object is returned as is, for decode to
// report.
func v01Peers(src, kind string, doc []byte) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return doc, nil
	}
	upgraded, notes, err := informer.UpgradeV01Peers(obj)
	if err == nil && len(notes) > 0 {
		err = errors.New(strings.Join(notes, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", src, objectName(kind, doc), err)
	}
	if reflect.DeepEqual(upgraded, obj) {
		return doc, nil // the current shape: decode the document as written
	}
	return json.Marshal(upgraded)
}

// clusterObject is a cluster-scoped object the reader keeps.
type clusterObject interface {
	*corev1.Node | *v1alpha1.AdminNetworkPolicy | *v1alpha1.BaselineAdminNetworkPolicy | *v1beta1.ClusterNetworkPolicy
	GetObjectMeta() metav1.Object
}

// addClusterScoped decodes a cluster-scoped object into obj and appends it
// to list. A metadata.namespace on it is an error (the API server would
// drop it; a file that sets one likely means something else).
func addClusterScoped[T clusterObject](st *State, src, kind string, doc []byte, obj T, list *[]T) error {
	if err := decode(src, kind, doc, obj); err != nil {
		return err
	}
	m := obj.GetObjectMeta()
	if m.GetName() == "" {
		return fmt.Errorf("%s: %s: metadata.name: Required value", src, kind)
	}
	if m.GetNamespace() != "" {
		return fmt.Errorf("%s: %s %s: metadata.namespace: Invalid value: %q: %s is cluster-scoped", src, kind, m.GetName(), m.GetNamespace(), kind)
	}
	k := Key(kind, "", m.GetName())
	if prev, ok := st.Sources[k]; ok {
		return fmt.Errorf("%s: %s: defined again (first at %s)", src, k, prev)
	}
	st.Sources[k] = src
	*list = append(*list, obj)
	return nil
}

// decode decodes strictly: unknown or duplicate fields are errors, and so is
// a value of the wrong type (a YAML 1.1 "yes" or 1.10 where a string is
// expected is not silently turned into "true" or "1.1"). The error names the
// object when its metadata can be read.
func decode(src, kind string, doc []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s: %s: %s", src, objectName(kind, doc), err)
	}
	return nil
}

// objectName returns "Kind namespace/name" (or "Kind name", or "Kind") from
// a document that failed to decode, reading its metadata leniently.
func objectName(kind string, doc []byte) string {
	var obj struct {
		Metadata struct{ Name, Namespace string } `json:"metadata"`
	}
	err := json.Unmarshal(doc, &obj)
	switch m := obj.Metadata; {
	case m.Name == "":
		return kind
	case clusterScoped[kind] || err != nil:
		return kind + " " + m.Name
	case m.Namespace == "":
		return kind + " " + metav1.NamespaceDefault + "/" + m.Name
	default:
		return kind + " " + m.Namespace + "/" + m.Name
	}
}

// clusterScoped holds the kinds read that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true,
	"AdminNetworkPolicy": true, "BaselineAdminNetworkPolicy": true, "ClusterNetworkPolicy": true,
}

func requireName(src, kind string, m *metav1.ObjectMeta, namespaced bool) error {
	if m.Name == "" {
		return fmt.Errorf("%s: %s: metadata.name: Required value", src, kind)
	}
	if namespaced && m.Namespace == "" {
		m.Namespace = metav1.NamespaceDefault
	}
	return nil
}

func (st *State) record(src, kind string, m *metav1.ObjectMeta, add func()) error {
	k := Key(kind, m.Namespace, m.Name)
	if prev, ok := st.Sources[k]; ok {
		return fmt.Errorf("%s: %s: defined again (first at %s)", src, k, prev)
	}
	st.Sources[k] = src
	add()
	return nil
}

func (st *State) sort() {
	slices.SortFunc(st.Namespaces, func(a, b *corev1.Namespace) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(st.Pods, func(a, b *corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(st.NetworkPolicies, func(a, b *networkingv1.NetworkPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	sortByName(st.Nodes)
	sortByName(st.AdminNetworkPolicies)
	sortByName(st.BaselineAdminNetworkPolicies)
	sortByName(st.ClusterNetworkPolicies)
}

func sortByName[T clusterObject](xs []T) {
	slices.SortFunc(xs, func(a, b T) int { return cmp.Compare(a.GetObjectMeta().GetName(), b.GetObjectMeta().GetName()) })
}

// Sort puts every list of st in namespace and name order, as Load leaves
// them; a State built by hand (e.g. from objects listed from an API
// server) must be sorted before State.Pod or Apply read it.
func (st *State) Sort() { st.sort() }
