package informer

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// Object builders with tweak functions.

func makeNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func makePod(ns, name, ip string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "c"}},
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  ip,
			PodIPs: []corev1.PodIP{{IP: ip}},
		},
	}
	for _, tw := range tweaks {
		tw(p)
	}
	return p
}

func withLabels(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

// makeDBPolicy admits TCP/6379 to role=db from role=frontend.
func makeDBPolicy(ns string, tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(6379)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "frontend"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	for _, tw := range tweaks {
		tw(np)
	}
	return np
}

const (
	ipDB       = "10.0.0.1"
	ipFrontend = "10.0.0.2"
	ipOther    = "10.0.0.3"
)

// countingBackend wraps the memory backend, counts calls, and fails Apply
// or Sync on demand.
type countingBackend struct {
	*memory.Backend
	applies, syncs       atomic.Int64
	failApply, failSyncs atomic.Int64              // how many of the next calls fail
	changeTime           atomic.Pointer[time.Time] // backend.ChangeTime of the last Apply
}

func newCountingBackend() *countingBackend {
	return &countingBackend{Backend: memory.New(memory.Config{})}
}

func (b *countingBackend) Apply(ctx context.Context, d *ir.Delta) error {
	b.applies.Add(1)
	if t, ok := backend.ChangeTime(ctx); ok {
		b.changeTime.Store(&t)
	}
	if b.failApply.Add(-1) >= 0 {
		return errTest
	}
	b.failApply.Store(0)
	return b.Backend.Apply(ctx, d)
}

func (b *countingBackend) Sync(ctx context.Context, s *ir.Snapshot) (backend.SyncReport, error) {
	b.syncs.Add(1)
	if b.failSyncs.Add(-1) >= 0 {
		return backend.SyncReport{}, errTest
	}
	b.failSyncs.Store(0)
	return b.Backend.Sync(ctx, s)
}

type testError struct{}

func (testError) Error() string { return "injected failure" }

var errTest error = testError{}

// fakeMetrics records what the controller reports.
type fakeMetrics struct {
	mu         sync.Mutex
	syncs      int
	applies    int
	latencies  []time.Duration
	generation uint64
	endpoints  int
	ruleLists  int
	members    int
	errors     map[string]int
	repairs    int
}

func (m *fakeMetrics) ObserveSync(time.Duration, backend.SyncReport) { m.do(func() { m.syncs++ }) }
func (m *fakeMetrics) ObserveApply(time.Duration)                    { m.do(func() { m.applies++ }) }
func (m *fakeMetrics) ObserveLatency(d time.Duration) {
	m.do(func() { m.latencies = append(m.latencies, d) })
}
func (m *fakeMetrics) SetGeneration(g uint64) { m.do(func() { m.generation = g }) }
func (m *fakeMetrics) SetCounts(e, r, s int) {
	m.do(func() { m.endpoints, m.ruleLists, m.members = e, r, s })
}
func (m *fakeMetrics) IncError(kind string) {
	m.do(func() {
		if m.errors == nil {
			m.errors = map[string]int{}
		}
		m.errors[kind]++
	})
}
func (m *fakeMetrics) AddRepairs(n int) { m.do(func() { m.repairs += n }) }
func (m *fakeMetrics) do(f func())      { m.mu.Lock(); defer m.mu.Unlock(); f() }

// env is a controller over a fake clientset and a counting memory backend.
type env struct {
	t       *testing.T
	client  *fake.Clientset
	engine  policy.Engine
	backend *countingBackend
	metrics *fakeMetrics
	c       *Controller
	cancel  context.CancelFunc
	done    chan error
}

func newEnv(t *testing.T, tweak func(*Config), objects ...runtime.Object) *env {
	t.Helper()
	e := &env{
		t:       t,
		client:  fake.NewClientset(objects...),
		engine:  policy.New(policy.Config{}),
		backend: newCountingBackend(),
		metrics: &fakeMetrics{},
	}
	cfg := Config{
		Client:           e.client,
		Engine:           e.engine,
		Backend:          e.backend,
		Metrics:          e.metrics,
		MinRetryInterval: time.Millisecond,
		MaxRetryInterval: 10 * time.Millisecond,
		Logger:           testr.New(t),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	e.c = c
	return e
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.c.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		require.NoError(e.t, err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("Run did not return")
	}
}

func (e *env) waitReady() {
	e.t.Helper()
	require.Eventually(e.t, e.c.Ready, 10*time.Second, time.Millisecond, "controller never ready")
}

// allowed evaluates src → dst TCP/port on the programmed state.
func (e *env) allowed(src, dst string, port uint16) bool {
	return e.backend.Evaluate(memory.Flow{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Protocol: ir.TCP, Port: port,
	}).Allowed
}

// eventually waits until the programmed state answers src → dst as want.
func (e *env) eventually(src, dst string, port uint16, want bool, msg string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.allowed(src, dst, port) == want },
		10*time.Second, time.Millisecond, msg)
}

var bg = context.Background()

// driftingBackend is a countingBackend whose packet filter someone else
// can wipe (flush): Changed reports it, and the next Sync reprograms
// everything and lists the repair, as the kernel backends do.
type driftingBackend struct {
	*countingBackend
	flushed  atomic.Bool
	checks   atomic.Int64
	failNext atomic.Int64 // how many of the next Changed calls fail
}

func (b *driftingBackend) flush() {
	b.flushed.Store(true)
	_ = b.Backend.Cleanup(context.Background())
}

func (b *driftingBackend) Changed(context.Context) (bool, error) {
	b.checks.Add(1)
	if b.failNext.Add(-1) >= 0 {
		return false, errTest
	}
	b.failNext.Store(0)
	return b.flushed.Load(), nil
}

func (b *driftingBackend) Sync(ctx context.Context, s *ir.Snapshot) (backend.SyncReport, error) {
	flushed := b.flushed.Swap(false)
	rep, err := b.countingBackend.Sync(ctx, s)
	if err != nil {
		b.flushed.Store(flushed)
		return rep, err
	}
	if flushed {
		rep.Repairs = append(rep.Repairs, "table missing")
	}
	return rep, nil
}
