package prommetrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/informer"
	"github.com/palisade-net/palisade/informer/prommetrics"
)

func TestRecordsIntoTheRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	require.NoError(t, err)
	m.ObserveSync(time.Millisecond, backend.SyncReport{Changes: 5})
	m.SetGeneration(3)
	m.SetCounts(2, 4, 6)
	m.IncError(informer.ErrorApply)
	m.AddRepairs(1)

	want := `
# HELP palisade_endpoints Local pods enforced.
# TYPE palisade_endpoints gauge
palisade_endpoints 2
# HELP palisade_errors_total Failures by kind: apply, sync, invalid_policy, invalid_pod.
# TYPE palisade_errors_total counter
palisade_errors_total{kind="apply"} 1
palisade_errors_total{kind="invalid_pod"} 0
palisade_errors_total{kind="invalid_policy"} 0
palisade_errors_total{kind="sync"} 0
# HELP palisade_programmed_generation Policy engine generation programmed into the packet filter.
# TYPE palisade_programmed_generation gauge
palisade_programmed_generation 3
# HELP palisade_sync_changes_total Objects created, replaced or deleted by full Syncs.
# TYPE palisade_sync_changes_total counter
palisade_sync_changes_total 5
# HELP palisade_drift_repairs_total Drift found in the packet filter and repaired by Syncs.
# TYPE palisade_drift_repairs_total counter
palisade_drift_repairs_total 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"palisade_endpoints", "palisade_errors_total", "palisade_programmed_generation",
		"palisade_sync_changes_total", "palisade_drift_repairs_total"))
	n, err := testutil.GatherAndCount(reg, "palisade_sync_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestRefusesATakenName(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := prommetrics.New(reg)
	require.NoError(t, err)
	_, err = prommetrics.New(reg)
	var are prometheus.AlreadyRegisteredError
	assert.ErrorAs(t, err, &are)

	// A failed New leaves the registry as it was: a fresh registry
	// holding one taken name accepts nothing, and keeps only that name.
	reg = prometheus.NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "palisade_endpoints", Help: "Local pods enforced."})))
	_, err = prommetrics.New(reg)
	require.ErrorAs(t, err, &are)
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, families, 1)
	assert.Equal(t, "palisade_endpoints", families[0].GetName())

	_, err = prommetrics.New(nil)
	assert.Error(t, err)
}

func TestVerdictLogMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	in, err := prommetrics.VerdictLog(reg)
	require.NoError(t, err)
	in.Records("deny").Add(2)
	in.Records("allow").Add(1)
	in.Dropped.Add(3)
	in.Overruns.Add(1)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP palisade_verdict_log_dropped_total Verdict log records dropped because the reader's queue was full (packets are never held).
# TYPE palisade_verdict_log_dropped_total counter
palisade_verdict_log_dropped_total 3
# HELP palisade_verdict_log_overruns_total Times the kernel dropped verdict log messages because the reader's socket buffer was full (ENOBUFS).
# TYPE palisade_verdict_log_overruns_total counter
palisade_verdict_log_overruns_total 1
# HELP palisade_verdict_log_records_total Verdict log records written, by verdict (allow, deny).
# TYPE palisade_verdict_log_records_total counter
palisade_verdict_log_records_total{verdict="allow"} 1
palisade_verdict_log_records_total{verdict="deny"} 2
`), "palisade_verdict_log_dropped_total", "palisade_verdict_log_overruns_total", "palisade_verdict_log_records_total"))
	_, err = prommetrics.VerdictLog(reg)
	assert.Error(t, err, "registering twice")
}
