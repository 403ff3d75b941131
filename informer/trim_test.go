package informer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"

	"github.com/palisade-net/palisade/policy"
)

// fullPod is a pod as the API server returns it: much the engine never reads.
func fullPod(ns, name, ip string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := makePod(ns, name, ip, tweaks...)
	p.UID = types.UID("uid-" + p.Name)
	p.ResourceVersion = "42"
	p.CreationTimestamp = metav1.NewTime(time.Unix(1700000000, 0))
	p.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"a very":"long value"}`}
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "rs", UID: "rs-uid"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "token"}}
	p.Spec.Containers[0].Image = "registry.example/app:v1"
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"}}
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379, Protocol: corev1.ProtocolTCP}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, Image: "registry.example/app:v1"}}
	return p
}

func TestTrimPodKeepsWhatTheEngineReads(t *testing.T) {
	deleting := metav1.NewTime(time.Unix(1700000100, 0))
	pods := []*corev1.Pod{
		fullPod("prod", "db", ipDB, withLabels("role", "db")),
		fullPod("prod", "frontend", ipFrontend, withLabels("role", "frontend"), func(p *corev1.Pod) { p.DeletionTimestamp = &deleting }),
		fullPod("prod", "host", "10.0.0.9", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
		fullPod("prod", "done", "10.0.0.8", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		fullPod("prod", "elsewhere", "10.0.0.7", func(p *corev1.Pod) { p.Spec.NodeName = "node-b" }),
		fullPod("prod", "dual", "10.0.0.6", func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "fd00::6"}) }),
	}
	full := policy.New(policy.Config{NodeName: "node-a"})
	trimmed := policy.New(policy.Config{NodeName: "node-a"})
	for _, p := range pods {
		before := p.DeepCopy()
		out, err := TrimPod(p)
		require.NoError(t, err)
		assert.Equal(t, before, p, "TrimPod does not modify its argument")
		tp := out.(*corev1.Pod)
		again, err := TrimPod(tp)
		require.NoError(t, err)
		assert.Equal(t, tp, again, "a trimmed pod trims to itself")
		assert.Empty(t, tp.Annotations)
		assert.Empty(t, tp.ManagedFields)
		assert.Empty(t, tp.Spec.Volumes)
		assert.Empty(t, tp.Status.ContainerStatuses)
		assert.Equal(t, p.ResourceVersion, tp.ResourceVersion, "the controller skips resyncs by resourceVersion")
		require.NoError(t, full.UpsertPod(p))
		require.NoError(t, trimmed.UpsertPod(tp))
	}
	require.NoError(t, full.UpsertNetworkPolicy(makeDBPolicy("prod")))
	require.NoError(t, trimmed.UpsertNetworkPolicy(makeDBPolicy("prod")))
	assert.Equal(t, full.Snapshot(), trimmed.Snapshot(), "the engine sees the same cluster through trimmed pods")
	assert.Equal(t, full.SharedAddresses(), trimmed.SharedAddresses())

	ns := makeNamespace("prod", nil)
	out, err := TrimPod(ns)
	require.NoError(t, err)
	assert.Same(t, ns, out, "other objects pass unchanged")
}

func TestOwnFactoryTrimsPods(t *testing.T) {
	e := newEnv(t, nil, fullPod("prod", "db", ipDB, withLabels("role", "db")))
	e.start()
	e.waitReady()
	objs := e.c.factory.Core().V1().Pods().Informer().GetStore().List()
	require.Len(t, objs, 1)
	p := objs[0].(*corev1.Pod)
	assert.Empty(t, p.Annotations, "the controller's own pod cache is trimmed")
	assert.Equal(t, map[string]string{"role": "db"}, p.Labels)
}

func TestUsesTheCallersFactory(t *testing.T) {
	objects := []runtime.Object{
		makeNamespace("prod", nil),
		fullPod("prod", "db", ipDB, withLabels("role", "db")),
		fullPod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
		fullPod("prod", "other", ipOther),
		makeDBPolicy("prod"),
	}
	var factory informers.SharedInformerFactory
	e := newEnv(t, func(cfg *Config) {
		factory = informers.NewSharedInformerFactory(cfg.Client, 0)
		cfg.Factory, cfg.Client = factory, nil
	}, objects...)
	// The caller's own user of the pod cache, registered before.
	pods := factory.Core().V1().Pods().Informer()
	e.start()
	e.waitReady()
	assert.True(t, e.allowed(ipFrontend, ipDB, 6379), "frontend → db:6379")
	assert.False(t, e.allowed(ipOther, ipDB, 6379), "other → db:6379")
	assert.Same(t, pods.GetIndexer(), e.c.factory.Core().V1().Pods().Informer().GetIndexer(), "one pod cache, the caller's")
	p, ok, err := pods.GetStore().GetByKey("prod/db")
	require.NoError(t, err)
	require.True(t, ok)
	assert.NotEmpty(t, p.(*corev1.Pod).Annotations, "no transform on a caller's cache")

	// An event after the first sync reaches the engine through the
	// caller's informer.
	updated := fullPod("prod", "other", ipOther, withLabels("role", "frontend"))
	updated.ResourceVersion = "43"
	_, err = e.client.CoreV1().Pods("prod").Update(bg, updated, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipOther, ipDB, 6379, true, "other became a frontend")
}
