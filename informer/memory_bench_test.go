package informer

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
)

// realisticPod is pod i of a Deployment as the API server returns it:
// managed fields, annotations, an owner, two containers with image, env,
// resources, mounts and probes, and a status with conditions and container
// statuses. Pods spread over 20 nodes and 1 namespace per 20 pods.
func realisticPod(i int) *corev1.Pod {
	ns := "ns-" + strconv.Itoa(i/20)
	name := "app-" + strconv.Itoa(i%20) + "-7d9f8b6c5-" + strconv.Itoa(i)
	ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	start := metav1.NewTime(time.Unix(1700000000+int64(i), 0))
	container := func(c string, port int32) corev1.Container {
		return corev1.Container{
			Name:  c,
			Image: "registry.example.com/team/" + c + ":v1.2.3@sha256:4f2b1a9c3e7d8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{
				{Name: "MODE", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			VolumeMounts:   []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(port)}}},
		}
	}
	status := func(c string) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: c, Ready: true, Started: new(true), Image: "registry.example.com/team/" + c + ":v1.2.3",
			ImageID:     "registry.example.com/team/" + c + "@sha256:4f2b1a9c3e7d8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
			ContainerID: "containerd://" + fmt.Sprintf("%064d", i),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("%08d-1111-2222-3333-444455556666", i)),
			ResourceVersion: strconv.Itoa(1000 + i), CreationTimestamp: start, GenerateName: "app-" + strconv.Itoa(i%20) + "-7d9f8b6c5-",
			Labels:      map[string]string{"app": "app-" + strconv.Itoa(i%20), "role": []string{"frontend", "backend", "db"}[i%3], "pod-template-hash": "7d9f8b6c5"},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "app-7d9f8b6c5",
				UID: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", Controller: new(true), BlockOwnerDeletion: new(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &start, FieldsType: "FieldsV1",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{},"f:role":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{},"f:image":{},"f:name":{},"f:ports":{},"f:resources":{}}}}}`)}},
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &start, FieldsType: "FieldsV1", Subresource: "status",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.0.0.1\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`)}},
			},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-" + strconv.Itoa(i%20), ServiceAccountName: "default", RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{container("app", 8080), container("sidecar", 9090)},
			Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.0." + strconv.Itoa(i%20+1), StartTime: &start,
			QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: start},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: start},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: start},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: start},
			},
			ContainerStatuses: []corev1.ContainerStatus{status("app"), status("sidecar")},
		},
	}
}

// BenchmarkInformerMemory reports the heap the informer's caches, the
// engine and a memory backend hold once the first Sync is done, for a
// cluster of realistic pods (one NetworkPolicy per namespace), every pod
// local (the most the engine keeps):
//   - untrimmed: the caller's factory, no transform (the baseline);
//   - no-managed-fields: the caller's factory with managed fields dropped
//     (what the controller's own factory did before TrimPod);
//   - trimmed: the controller's own factory, pods trimmed by TrimPod;
//   - engine-only: the same pods fed to the engine and backend directly,
//     no informer (what the engine itself holds).
//
// Run: go test -run '^$' -bench InformerMemory -benchtime 1x ./informer/
func BenchmarkInformerMemory(b *testing.B) {
	for _, pods := range []int{10_000, 100_000} {
		if pods > 10_000 && testing.Short() {
			continue
		}
		objects := make([]k8sruntime.Object, 0, pods+pods/10)
		for ns := range pods / 20 {
			objects = append(objects, makeNamespace("ns-"+strconv.Itoa(ns), nil), makeDBPolicy("ns-"+strconv.Itoa(ns)))
		}
		for i := range pods {
			objects = append(objects, realisticPod(i))
		}
		for _, variant := range []string{"untrimmed", "no-managed-fields", "trimmed", "engine-only"} {
			b.Run(fmt.Sprintf("pods=%d/%s", pods, variant), func(b *testing.B) {
				var heap uint64
				for b.Loop() {
					b.StopTimer()
					heap = heldHeap(b, variant, objects)
					b.StartTimer()
				}
				b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
				b.ReportMetric(float64(heap)/float64(pods), "heap-B/pod")
			})
		}
	}
}

// heldHeap returns the heap held by one variant's informer, engine and
// backend, beyond the fake API server's own copy of the objects.
func heldHeap(b *testing.B, variant string, objects []k8sruntime.Object) uint64 {
	client := fake.NewClientset(objects...)
	before := heapInUse()
	eng := policy.New(policy.Config{})
	be := memory.New(memory.Config{})
	if variant == "engine-only" {
		for _, o := range objects {
			switch o := o.(type) {
			case *corev1.Pod:
				_ = eng.UpsertPod(o)
			case *corev1.Namespace:
				eng.UpsertNamespace(o)
			}
		}
		if _, err := be.Sync(context.Background(), eng.Checkpoint()); err != nil {
			b.Fatal(err)
		}
		after := heapInUse()
		runtime.KeepAlive(eng)
		runtime.KeepAlive(be)
		runtime.KeepAlive(client)
		return after - min(before, after)
	}
	cfg := Config{Client: client, Engine: eng, Backend: be, Logger: logr.Discard(), ResyncPeriod: -1}
	if variant != "trimmed" {
		factory := informers.NewSharedInformerFactory(client, 0)
		cfg.Factory, cfg.Client = factory, nil
		if variant == "no-managed-fields" {
			if err := factory.Core().V1().Pods().Informer().SetTransform(dropManagedFields); err != nil {
				b.Fatal(err)
			}
		}
	}
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Minute); !c.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("controller not ready after 10 minutes")
		}
	}
	after := heapInUse()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	runtime.KeepAlive(client)
	return after - min(before, after)
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
