package informer

import (
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-net/palisade/backend/backendtest"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
)

// scratchNftables is an nftables backend with the given table in a fresh
// network namespace (backendtest.NewNetNS), removed after the test.
func scratchNftables(t *testing.T, table string) *nftables.Backend {
	ns := backendtest.NewNetNS(t, "programs nftables")
	nft, err := nftables.New(nftables.Config{TableName: table, NetNS: int(ns)})
	if err != nil {
		t.Skipf("nftables unavailable: %v", err)
	}
	t.Cleanup(func() {
		_ = nft.Cleanup(bg)
		_ = nft.Close()
	})
	return nft
}

// TestNftablesBackend runs the controller against the real nftables
// backend in a scratch namespace: the first Sync and the Applies of later
// events must succeed without falling back.
func TestNftablesBackend(t *testing.T) {
	nft := scratchNftables(t, "palisade-informer-test")

	client := fake.NewClientset(makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makeDBPolicy("prod"))
	metrics := &fakeMetrics{}
	c, err := New(Config{Client: client, Engine: policy.New(policy.Config{}), Backend: nft, Metrics: metrics,
		Logger: testr.New(t)})
	require.NoError(t, err)
	e := &env{t: t, client: client, c: c}
	e.start()
	e.waitReady()

	_, err = client.CoreV1().Pods("prod").Create(bg,
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		metrics.do(func() { n = metrics.applies })
		return n >= 1
	}, 10*time.Second, time.Millisecond, "the new pod is applied as a delta")
	metrics.do(func() {
		assert.Empty(t, metrics.errors, "no Apply or Sync failed")
		assert.Equal(t, 2, metrics.endpoints)
	})
	e.stop()
	rep, err := nft.Sync(bg, e.c.cfg.Engine.Snapshot())
	require.NoError(t, err)
	assert.Empty(t, rep.Repairs, "the kernel holds what the controller programmed")
}

// TestFailClosedInNetNS installs the fail-closed isolation on a fresh
// namespace through the nftables backend, and leaves an existing table
// untouched.
func TestFailClosedInNetNS(t *testing.T) {
	nft := scratchNftables(t, "palisade-failclosed-test")
	res, err := FailClosed(bg, fake.NewClientset(makePod("x", "a", "10.0.0.1")), nft, "node-a")
	require.NoError(t, err)
	assert.Equal(t, FailClosedResult{Endpoints: 1, Changes: res.Changes}, res)
	installed, err := nft.Installed(bg)
	require.NoError(t, err)
	assert.True(t, installed, "table installed on a fresh node")

	// A restart finds the table and changes nothing, whatever the API
	// server lists now: the kernel still holds exactly the first isolation.
	res, err = FailClosed(bg, fake.NewClientset(makePod("y", "b", "10.0.0.2")), nft, "node-a")
	require.NoError(t, err)
	assert.True(t, res.Kept)
	drift, err := nft.Drift(bg)
	require.NoError(t, err)
	assert.Empty(t, drift, "the existing table was left alone")
}
