package informer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/record"
)

func newDriftEnv(t *testing.T, tweak func(*Config)) (*env, *driftingBackend) {
	t.Helper()
	db := &driftingBackend{countingBackend: newCountingBackend()}
	e := newEnv(t, func(c *Config) {
		c.Backend = db
		c.DriftCheckInterval = time.Millisecond
		if tweak != nil {
			tweak(c)
		}
	}, makeNamespace("prod", nil),
		makePod("prod", "db", ipDB, withLabels("role", "db")),
		makePod("prod", "frontend", ipFrontend, withLabels("role", "frontend")),
		makePod("prod", "other", ipOther),
		makeDBPolicy("prod"))
	e.backend = db.countingBackend
	return e, db
}

func TestDriftIsRepairedAtOnce(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	e, db := newDriftEnv(t, func(c *Config) { c.Recorder, c.NodeName = rec, "node-1" })
	e.start()
	e.waitReady()
	require.False(t, e.allowed(ipOther, ipDB, 6379), "the policy is enforced")
	syncs := e.backend.syncs.Load()

	db.flush()
	require.True(t, e.allowed(ipOther, ipDB, 6379), "a flushed packet filter lets everything through")
	e.eventually(ipOther, ipDB, 6379, false, "the drift check calls for a Sync that reprograms the policy")
	assert.Greater(t, e.backend.syncs.Load(), syncs, "repaired by a full Sync, long before the periodic resync")
	assert.True(t, e.allowed(ipFrontend, ipDB, 6379))

	select {
	case ev := <-rec.Events:
		assert.True(t, strings.HasPrefix(ev, "Warning "+EventReasonDriftRepaired+" "), ev)
		assert.Contains(t, ev, "table missing", "the Event names what was repaired")
	case <-time.After(5 * time.Second):
		t.Fatal("no Event recorded for the repair")
	}
	require.Eventually(t, func() bool {
		n := 0
		e.metrics.do(func() { n = e.metrics.repairs })
		return n == 1
	}, 5*time.Second, time.Millisecond, "the repair is counted")

	// No change, no Sync: the check answers false and the runner stays idle.
	syncs = e.backend.syncs.Load()
	checks := db.checks.Load()
	require.Eventually(t, func() bool { return db.checks.Load() >= checks+5 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, syncs, e.backend.syncs.Load(), "a quiet packet filter costs checks, not Syncs")
}

func TestDriftCheckFailureIsCountedAndRecovers(t *testing.T) {
	e, db := newDriftEnv(t, nil)
	db.failNext.Store(3)
	e.start()
	e.waitReady()
	require.Eventually(t, func() bool { return db.checks.Load() > 3 }, 5*time.Second, time.Millisecond)
	e.metrics.do(func() { assert.Equal(t, 3, e.metrics.errors[ErrorDriftCheck]) })

	db.flush()
	e.eventually(ipOther, ipDB, 6379, false, "repaired once the check works again")
}

func TestDriftCheckDisabled(t *testing.T) {
	e, db := newDriftEnv(t, func(c *Config) { c.DriftCheckInterval = -1 })
	e.start()
	e.waitReady()
	db.flush()
	// Give a check every chance to run (the interval would be 1 ms).
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, db.checks.Load(), "no drift check when disabled")
	assert.True(t, e.allowed(ipOther, ipDB, 6379), "left for the periodic resync")
}
