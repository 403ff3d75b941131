package informer

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	testclock "k8s.io/utils/clock/testing"

	"github.com/palisade-net/palisade/backend/memory"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

func TestNewRequiresClientEngineBackend(t *testing.T) {
	_, err := New(Config{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, field := range []string{"Client", "Engine", "Backend"} { // the message names them
		assert.Contains(t, err.Error(), field)
	}
	_, err = New(Config{
		Client: nil, Engine: policy.New(policy.Config{}), Backend: memory.New(memory.Config{}),
		MinSyncInterval: -time.Second,
	})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "MinSyncInterval")
}

func TestProgramsObjects(t *testing.T) {
	e := newEnv(t, nil,
		makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
		makePod("prod", "other", ipOther),
		makeDBPolicy("prod"),
	)
	assert.False(t, e.c.Ready(), "not ready before Run")
	e.start()
	e.waitReady()

	assert.True(t, e.allowed(ipFrontend, ipDB, 6379), "frontend → db:6379")
	assert.False(t, e.allowed(ipOther, ipDB, 6379), "other → db:6379")
	assert.False(t, e.allowed(ipFrontend, ipDB, 80), "frontend → db:80")
	assert.True(t, e.allowed(ipDB, ipOther, 80), "other is not isolated")
	assert.Equal(t, e.backend.Generation(), e.c.Generation())
	assert.NotZero(t, e.c.Generation())

	e.metrics.do(func() {
		assert.Equal(t, 1, e.metrics.syncs)
		assert.Equal(t, 3, e.metrics.endpoints)
		assert.Positive(t, e.metrics.ruleLists)
		assert.Positive(t, e.metrics.members)
		assert.Equal(t, e.c.Generation(), e.metrics.generation)
		assert.Empty(t, e.metrics.latencies, "the initial lists are no events")
	})
}

func TestFollowsUpdatesAndDeletes(t *testing.T) {
	e := newEnv(t, nil, makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")))
	e.start()
	e.waitReady()
	pods := e.client.CoreV1().Pods("prod")
	nps := e.client.NetworkingV1().NetworkPolicies("prod")

	// A new frontend pod and the policy: access at once.
	_, err := pods.Create(bg, makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = pods.Create(bg, makePod("prod", "other", ipOther), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = nps.Create(bg, makeDBPolicy("prod"), metav1.CreateOptions{})
	require.NoError(t, err)
	e.eventually(ipOther, ipDB, 6379, false, "policy isolates db")
	e.eventually(ipFrontend, ipDB, 6379, true, "frontend admitted")

	// The label goes: access goes.
	fe := makePod("prod", "frontend", ipFrontend, withLabels("role", "none"))
	_, err = pods.Update(bg, fe, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipFrontend, ipDB, 6379, false, "relabelled frontend denied")

	// Another pod gains the label.
	_, err = pods.Update(bg, makePod("prod", "other", ipOther, withLabels("role", "frontend")), metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipOther, ipDB, 6379, true, "new frontend admitted")

	// The policy changes port.
	np := makeDBPolicy("prod", func(np *networkingv1.NetworkPolicy) {
		port := intstr.FromInt32(5432)
		np.Spec.Ingress[0].Ports[0].Port = &port
	})
	_, err = nps.Update(bg, np, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipOther, ipDB, 5432, true, "new port admitted")
	e.eventually(ipOther, ipDB, 6379, false, "old port denied")

	// The policy goes: db open again.
	require.NoError(t, nps.Delete(bg, "db", metav1.DeleteOptions{}))
	e.eventually(ipFrontend, ipDB, 80, true, "no policy, no isolation")

	// Pod deleted: not an endpoint any more.
	require.NoError(t, pods.Delete(bg, "db", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, ok := e.backend.Endpoint(netip.MustParseAddr(ipDB))
		return !ok
	}, 10*time.Second, time.Millisecond, "db endpoint removed")

	// Namespace labels feed namespace selectors; deleting the Namespace
	// object keeps its pods.
	require.NoError(t, e.client.CoreV1().Namespaces().Delete(bg, "prod", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return len(e.engine.Problems()) == 0 && e.c.Generation() == e.backend.Generation() },
		10*time.Second, time.Millisecond)
	e.metrics.do(func() { assert.NotEmpty(t, e.metrics.latencies, "latency observed for events") })
}

func TestTombstones(t *testing.T) {
	e := newEnv(t, nil, makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
		makeDBPolicy("prod"))
	e.start()
	e.waitReady()
	require.True(t, e.allowed(ipFrontend, ipDB, 6379))

	// The watch missed the delete: the informer hands over a tombstone,
	// with or without the last known object.
	podHandlers := handlers(e.c, "Pod", e.c.upsertPod, e.engine.DeletePod)
	podHandlers.OnDelete(cache.DeletedFinalStateUnknown{Key: "prod/frontend"})
	e.eventually(ipFrontend, ipDB, 6379, false, "tombstoned frontend gone from the peer set")

	npHandlers := handlers(e.c, "NetworkPolicy", e.c.upsertNetworkPolicy, e.engine.DeleteNetworkPolicy)
	npHandlers.OnDelete(cache.DeletedFinalStateUnknown{Key: "prod/db", Obj: makeDBPolicy("prod")})
	e.eventually(ipFrontend, ipDB, 80, true, "tombstoned policy gone")

	nsHandlers := handlers(e.c, "Namespace",
		func(ns *corev1.Namespace) error { e.engine.UpsertNamespace(ns); return nil },
		func(_, name string) { e.engine.DeleteNamespace(name) })
	nsHandlers.OnDelete(cache.DeletedFinalStateUnknown{Key: "prod"})
	// Not a tombstone nor the right type: ignored, no panic.
	podHandlers.OnDelete("garbage")
	podHandlers.OnDelete(cache.DeletedFinalStateUnknown{Key: "a/b/c"})
	podHandlers.OnAdd(makeDBPolicy("x"), false)
}

func TestBurstCoalesces(t *testing.T) {
	const interval = 20 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.MinSyncInterval = interval },
		makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makeDBPolicy("prod"))
	e.start()
	e.waitReady()
	applies0 := e.backend.applies.Load()

	// 1000 changes from 10 goroutines, handed to the handlers as the
	// informers would (the fake clientset's tracker is too slow to deliver
	// a burst fast): 250 pods added, each updated three times.
	h := handlers(e.c, "Pod", e.c.upsertPod, e.engine.DeletePod)
	const n = 250
	roles := []func(i int) string{
		func(int) string { return "frontend" },
		func(int) string { return "backend" },
		func(int) string { return "frontend" },
		func(i int) string { return []string{"frontend", "none"}[i%2] },
	}
	final := make([]*corev1.Pod, n)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				var old *corev1.Pod
				for round, role := range roles {
					pod := makePod("prod", fmt.Sprintf("p%d", i), fmt.Sprintf("10.1.%d.%d", i/200, i%200+1),
						withLabels("role", role(i)))
					pod.ResourceVersion = fmt.Sprint(round + 1)
					if old == nil {
						h.OnAdd(pod, false)
					} else {
						h.OnUpdate(old, pod)
					}
					old = pod
				}
				final[i] = old
			}
		})
	}
	wg.Wait()
	t.Logf("events took %v", time.Since(start))

	// Converges to what a fresh engine computes from the same objects.
	fresh := policy.New(policy.Config{})
	fresh.UpsertNamespace(makeNamespace("prod", nil))
	require.NoError(t, fresh.UpsertPod(makePod("prod", "db", ipDB, withLabels("role", "db"))))
	require.NoError(t, fresh.UpsertNetworkPolicy(makeDBPolicy("prod")))
	for _, p := range final {
		require.NoError(t, fresh.UpsertPod(p))
	}
	want := fresh.Snapshot()
	want.Sort()
	var diff string
	require.Eventually(t, func() bool {
		diff = cmp.Diff(want, e.backend.Snapshot(), cmpopts.IgnoreFields(ir.Snapshot{}, "Generation"),
			cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{}))
		return diff == ""
	}, 10*time.Second, 10*time.Millisecond, "state differs from a fresh snapshot")
	if diff != "" {
		t.Log(diff)
	}
	assert.True(t, e.allowed("10.1.0.1", ipDB, 6379), "p0 (even) is a frontend")
	assert.False(t, e.allowed("10.1.0.2", ipDB, 6379), "p1 (odd) is not")

	elapsed := time.Since(start)
	applies := e.backend.applies.Load() - applies0
	t.Logf("1000 changes in %v → %d applies, %d syncs", elapsed, applies, e.backend.syncs.Load())
	assert.LessOrEqual(t, applies, int64(elapsed/interval)+2, "at most one Apply per interval")
	assert.Less(t, applies, int64(250), "bursts coalesce")
	assert.Positive(t, applies)
	e.metrics.do(func() {
		assert.Equal(t, n+1, e.metrics.endpoints, "counts follow the deltas")
	})
}

func TestApplyFailureFallsBackToSync(t *testing.T) {
	e := newEnv(t, nil, makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("prod", "frontend", ipFrontend),
		makeDBPolicy("prod"))
	e.start()
	e.waitReady()
	syncs := e.backend.syncs.Load()

	e.backend.failApply.Store(1)
	_, err := e.client.CoreV1().Pods("prod").Update(bg,
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")), metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipFrontend, ipDB, 6379, true, "change programmed by the fallback Sync")
	assert.Equal(t, syncs+1, e.backend.syncs.Load(), "one fallback Sync")
	e.metrics.do(func() { assert.Equal(t, 1, e.metrics.errors[ErrorApply]) })

	// Applies work again afterwards.
	applies := e.backend.applies.Load()
	_, err = e.client.CoreV1().Pods("prod").Update(bg, makePod("prod", "frontend", ipFrontend), metav1.UpdateOptions{})
	require.NoError(t, err)
	e.eventually(ipFrontend, ipDB, 6379, false, "change applied")
	assert.Greater(t, e.backend.applies.Load(), applies)
	assert.Equal(t, syncs+1, e.backend.syncs.Load(), "no further Sync")
}

func TestSyncFailureIsRetried(t *testing.T) {
	e := newEnv(t, nil, makeNamespace("prod", nil), makePod("prod", "db", ipDB, withLabels("role", "db")), makeDBPolicy("prod"))
	e.backend.failSyncs.Store(3)
	e.start()
	e.waitReady()
	assert.Equal(t, int64(4), e.backend.syncs.Load())
	e.metrics.do(func() { assert.Equal(t, 3, e.metrics.errors[ErrorSync]) })
	assert.False(t, e.allowed(ipFrontend, ipDB, 6379))
}

func TestPeriodicResync(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ResyncPeriod = 20 * time.Millisecond }, makeNamespace("prod", nil))
	e.start()
	e.waitReady()
	require.Eventually(t, func() bool { return e.backend.syncs.Load() >= 3 }, 10*time.Second, time.Millisecond)
}

func TestInvalidPolicyRecordsEventAndIsolates(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	bad := makeDBPolicy("prod", func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From,
			networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}})
	})
	e := newEnv(t, func(c *Config) { c.Recorder = rec }, makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
		bad)
	e.start()
	e.waitReady()

	select {
	case ev := <-rec.Events:
		assert.True(t, strings.HasPrefix(ev, "Warning "+EventReasonInvalidNetworkPolicy+" "), ev)
		assert.Contains(t, ev, "cidr", "the event names the field")
	case <-time.After(5 * time.Second):
		t.Fatal("no event recorded")
	}
	assert.False(t, e.allowed(ipFrontend, ipDB, 6379), "an invalid policy allows nothing")
	assert.True(t, e.allowed(ipDB, ipFrontend, 80), "frontend is not selected")
	e.metrics.do(func() { assert.Equal(t, 1, e.metrics.errors[ErrorInvalidPolicy]) })
}

func TestNotReadyBeforeCachesSync(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, nil, makeNamespace("prod", nil), makePod("prod", "db", ipDB, withLabels("role", "db")))
	e.client.PrependReactor("list", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil
	})
	e.start()
	time.Sleep(100 * time.Millisecond)
	assert.False(t, e.c.Ready(), "ready before the NetworkPolicy cache synced")
	assert.Zero(t, e.backend.syncs.Load(), "nothing programmed from a partial view")
	close(release)
	e.waitReady()
}

func TestRunTwice(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.waitReady()
	require.Error(t, e.c.Run(bg))
}

func TestLatencyObservedWithFakeClock(t *testing.T) {
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, func(c *Config) { c.Clock = clk }, makeNamespace("prod", nil))
	e.start()
	e.waitReady() // the first run needs no timer

	// An event at T0, programmed by the run due at T0 + MinSyncInterval.
	t0 := clk.Now()
	h := handlers(e.c, "Pod", e.c.upsertPod, e.engine.DeletePod)
	h.OnAdd(makePod("prod", "a", ipDB), false)
	clk.Step(DefaultMinSyncInterval)
	require.Eventually(t, func() bool {
		_, ok := e.backend.Endpoint(netip.MustParseAddr(ipDB))
		return ok
	}, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		var n int
		e.metrics.do(func() { n = len(e.metrics.latencies) })
		return n == 1
	}, 10*time.Second, time.Millisecond)
	e.metrics.do(func() {
		assert.Equal(t, DefaultMinSyncInterval, e.metrics.latencies[0], "event received → run returned")
		assert.Equal(t, 1, e.metrics.applies)
	})
	// The backend learns when the change it programs happened.
	if got := e.backend.changeTime.Load(); assert.NotNil(t, got) {
		assert.Equal(t, t0, *got)
	}
}

// logLines collects a logger's lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logLines) containing(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if all(line, parts) {
			return true
		}
	}
	return false
}

func all(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// An address reported by two pods (the old one's object outliving its
// network) is logged with its owner once, and again when it is no longer
// shared; the programmed state holds the owner's endpoint only.
func TestLogsSharedAddresses(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	created := func(d time.Duration) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(epoch.Add(d)) }
	}
	logs := &logLines{}
	e := newEnv(t, func(c *Config) { c.Logger = funcr.New(logs.add, funcr.Options{}) },
		makeNamespace("prod", nil),
		makePod("prod", "old", ipDB, withLabels("role", "db"), created(0)),
		makePod("prod", "new", ipDB, withLabels("role", "web"), created(time.Minute)),
		makeDBPolicy("prod"))
	e.start()
	e.waitReady()
	require.Eventually(t, func() bool {
		return logs.containing("Pods report the same address", `"address"="`+ipDB+`"`, `"owner"="prod/new"`, `"others"=["prod/old"]`)
	}, 10*time.Second, time.Millisecond, "the shared address is logged with its owner")
	assert.True(t, e.allowed("10.9.9.9", ipDB, 6379), "prod/new owns the address and is no db: the db policy does not apply")

	require.NoError(t, e.client.CoreV1().Pods("prod").Delete(context.Background(), "new", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		return logs.containing("Address no longer shared", `"address"="`+ipDB+`"`, `"owner"="prod/new"`)
	}, 10*time.Second, time.Millisecond, "the end of the conflict is logged")
	require.Eventually(t, func() bool { return !e.allowed("10.9.9.9", ipDB, 6379) }, 10*time.Second, time.Millisecond,
		"prod/old has its address back and its policy applies")
}
