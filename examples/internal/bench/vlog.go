package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/backend/verdictlog"
)

// VerdictLogFigures are the datapath with the kernel verdict log: the same
// paired measurement (node under test against the reference node) with
// the largest policy count, the log off, on for denials only, and on for
// every new connection, each in the same run.
type VerdictLogFigures struct {
	Policies int `json:"policies"`
	// Off has no logging rules: the baseline.
	Off DatapathRun `json:"off"`
	// Deny logs denied new connections (--log-verdicts=deny): the bench
	// pair's allowed connection meets no logging rule.
	Deny DatapathRun `json:"deny"`
	// All logs every allowed new connection too (--log-verdicts=all), at
	// both ends, with a budget (AllRate) above the connection rate, so that
	// every first packet is logged, and a reader draining the group.
	All DatapathRun `json:"all"`
	// AllRate is All's budget, records per second for the node.
	AllRate uint32 `json:"allRate"`
	// AllBudget is All with the default budget (verdictlog.DefaultRate):
	// the agent's --log-verdicts=all as shipped; connections past the
	// budget pay the limit check only.
	AllBudget DatapathRun `json:"allBudget"`
	// AllRecords and AllDropped are the log records the reader received
	// and dropped during All; AllOverruns the socket overruns.
	AllRecords  uint64 `json:"allRecords"`
	AllDropped  uint64 `json:"allDropped"`
	AllOverruns uint64 `json:"allOverruns"`
	// AddedMedianMicros is each run's paired overhead minus Off's: the
	// first-packet latency the log adds.
	DenyAddedMedianMicros      float64 `json:"denyAddedMedianMicros"`
	AllAddedMedianMicros       float64 `json:"allAddedMedianMicros"`
	AllBudgetAddedMedianMicros float64 `json:"allBudgetAddedMedianMicros"`
	// ConnsRatioOverOff is each run's ConnsRatio over Off's.
	DenyConnsRatioOverOff float64  `json:"denyConnsRatioOverOff"`
	AllConnsRatioOverOff  float64  `json:"allConnsRatioOverOff"`
	Notes                 []string `json:"notes"`
}

// benchLogGroup is the NFLOG group of the bench's verdict log.
const benchLogGroup = 4242

// runVerdictLog measures the datapath with the log off, deny and all, at
// k policies, each on a fresh table.
func runVerdictLog(ctx context.Context, m *pairedMeter, ns netns.NsHandle, cfg Config, k int, progress func(string, ...any)) (*VerdictLogFigures, error) {
	fig := &VerdictLogFigures{Policies: k, AllRate: verdictlog.MaxRate, Notes: []string{
		"each run programs a fresh table with the synthetic cluster, k policies and the bench pair (client egress and server ingress isolated by NetworkPolicies), then measures as the policy runs do",
		"all: every allowed connection's SYN is logged twice (the client's egress Allow rule and the server's ingress Allow rule) and read by a verdictlog.Reader in this process",
	}}
	for _, run := range []struct {
		name string
		lg   verdictlog.Logging
		out  *DatapathRun
	}{
		{"off", verdictlog.Logging{}, &fig.Off},
		{"deny", verdictlog.Logging{Enabled: true, Group: benchLogGroup}, &fig.Deny},
		{"all", verdictlog.Logging{Enabled: true, Group: benchLogGroup, Rate: fig.AllRate, Allowed: true}, &fig.All},
		{"all, default budget", verdictlog.Logging{Enabled: true, Group: benchLogGroup, Allowed: true}, &fig.AllBudget},
	} {
		progress("datapath: verdict log %s, %d policies", run.name, k)
		st, err := logRun(ctx, m, ns, cfg, k, run.lg, run.out)
		if err != nil {
			return nil, fmt.Errorf("verdict log %s: %w", run.name, err)
		}
		if run.out == &fig.All {
			fig.AllRecords, fig.AllDropped, fig.AllOverruns = st.Received, st.Dropped, st.Overruns
			if st.Received == 0 {
				return nil, fmt.Errorf("verdict log all: no record received")
			}
		}
	}
	fig.DenyAddedMedianMicros = round(fig.Deny.PairedOverheadMedianMicros-fig.Off.PairedOverheadMedianMicros, 2)
	fig.AllAddedMedianMicros = round(fig.All.PairedOverheadMedianMicros-fig.Off.PairedOverheadMedianMicros, 2)
	fig.AllBudgetAddedMedianMicros = round(fig.AllBudget.PairedOverheadMedianMicros-fig.Off.PairedOverheadMedianMicros, 2)
	fig.DenyConnsRatioOverOff = ratio(fig.Deny.ConnsRatio, fig.Off.ConnsRatio)
	fig.AllConnsRatioOverOff = ratio(fig.All.ConnsRatio, fig.Off.ConnsRatio)
	return fig, nil
}

// logRun is one policy run with logging lg and, when it logs, a reader.
func logRun(ctx context.Context, m *pairedMeter, ns netns.NsHandle, cfg Config, k int, lg verdictlog.Logging, out *DatapathRun) (st verdictlog.Stats, err error) {
	be, err := nftables.New(nftables.Config{TableName: tableName, NetNS: int(ns), Log: lg})
	if err != nil {
		return st, err
	}
	s := &backendSession{be: be, ns: ns}
	defer func() {
		if derr := s.done(ctx); err == nil {
			err = derr
		}
	}()
	var rd *verdictlog.Reader
	var wg sync.WaitGroup
	var emitted atomic.Uint64
	if lg.Enabled {
		if rd, err = verdictlog.Open(verdictlog.Config{NetNS: int(ns), Group: lg.Group, Resolver: verdictlog.NewCatalog(nil)}); err != nil {
			return st, err
		}
		rctx, cancel := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = rd.Run(rctx, func(*verdictlog.Event) { emitted.Add(1) })
		}()
		defer func() {
			time.Sleep(50 * time.Millisecond) // the last records
			cancel()
			wg.Wait()
			st = rd.Stats()
		}()
	}
	run, err := policyRun(ctx, m, s, cfg, k, addBenchObjects)
	if err != nil {
		return st, err
	}
	if !run.DeniedPortBlocked {
		return st, fmt.Errorf("the policy does not block the denied port")
	}
	*out = run.DatapathRun
	return st, nil
}
