package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/vishvananda/netns"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/nftables"
	"github.com/palisade-net/palisade/policy"
	"github.com/palisade-net/palisade/policy/ir"
)

// tableName is the nftables table the benchmark programs, inside a lab node
// namespace only.
const tableName = "palisade-bench"

// largeFactor is how many times the configured pods the large run has.
const largeFactor = 10

// BackendFigures are the nftables backend's figures, measured in a lab node
// namespace.
type BackendFigures struct {
	Name  string `json:"name"`
	Table string `json:"table"`
	// ColdSyncSeconds: the full snapshot (every pod local) into a fresh
	// backend and an empty namespace; ColdSyncChanges is its report.
	ColdSyncSeconds float64 `json:"coldSyncSeconds"`
	ColdSyncChanges int     `json:"coldSyncChanges"`
	// Kernel is what the kernel then holds, read back over netlink.
	Kernel KernelCount `json:"kernel"`
	// NoopResyncSeconds: the median of noopResyncs further Syncs of the same
	// snapshot; NoopResyncChanges, the most any of them changed, must be 0.
	NoopResyncSeconds float64 `json:"noopResyncSeconds"`
	NoopResyncChanges int     `json:"noopResyncChanges"`
	// PodChange: Apply of the delta of one pod's label change.
	PodChange ApplyStats `json:"podChange"`
	// PodChangeLarge: the same at (up to) ten times the pods.
	PodChangeLarge LargeRun `json:"podChangeLarge"`
	// Baseline: the cluster without policies, cold Sync.
	Baseline BackendBaseline `json:"baseline"`
	// CleanedUp: after Cleanup, no table of ours is left in the namespace.
	CleanedUp bool `json:"cleanedUp"`
}

// noopResyncs is how many no-op resyncs NoopResyncSeconds is the median of.
const noopResyncs = 11

// KernelCount is what a table holds in the kernel.
type KernelCount struct {
	Sets int `json:"sets"`
	// Elements counts the elements of every set and map as the kernel lists
	// them (an interval of a non-concatenated interval set lists as two: its
	// start and its end).
	Elements int `json:"elements"`
}

// ApplyStats times the Apply of one-pod label changes.
type ApplyStats struct {
	Latencies
	// TouchedSetMembersMax is the size (IR members) of the largest address
	// set the changes modified: what an Apply may cost in proportion to,
	// when the kernel's set type costs in proportion to its size.
	TouchedSetMembersMax int `json:"touchedSetMembersMax"`
	// UserMicrosPerApply and SystemMicrosPerApply split the process's CPU
	// time during the Applies: user is the backend's Go code, system is
	// mostly the kernel processing the netlink batch (nf_tables commits
	// run in the sender's context).
	UserMicrosPerApply   float64 `json:"userMicrosPerApply"`
	SystemMicrosPerApply float64 `json:"systemMicrosPerApply"`
}

// BackendBaseline is the cold Sync of the snapshot without policies.
type BackendBaseline struct {
	ColdSyncSeconds float64     `json:"coldSyncSeconds"`
	ColdSyncChanges int         `json:"coldSyncChanges"`
	Kernel          KernelCount `json:"kernel"`
}

// LargeRun is the pod change at a larger cluster.
type LargeRun struct {
	// Factor is the multiple of --pods used; 10 unless the budget forced
	// less (see Note).
	Factor          int         `json:"factor"`
	Pods            int         `json:"pods"`
	Namespaces      int         `json:"namespaces"`
	Policies        int         `json:"policies"`
	Endpoints       int         `json:"endpoints"`
	SetMembers      int         `json:"setMembers"`
	CompileSeconds  float64     `json:"compileSeconds"`
	ColdSyncSeconds float64     `json:"coldSyncSeconds"`
	Kernel          KernelCount `json:"kernel"`
	ApplyStats
	// P50Ratio is this p50 over PodChange's: near 1 when the cost of a
	// change does not grow with the sets.
	P50Ratio float64 `json:"p50Ratio"`
	Note     string  `json:"note,omitempty"`
}

// backendSession is a Backend on the lab node's namespace, cleaned up and
// closed by done whatever happened.
type backendSession struct {
	be *nftables.Backend
	ns netns.NsHandle
}

func openBackend(ns netns.NsHandle) (*backendSession, error) {
	be, err := nftables.New(nftables.Config{TableName: tableName, NetNS: int(ns)})
	if err != nil {
		return nil, err
	}
	return &backendSession{be: be, ns: ns}, nil
}

// done removes the table and closes the backend, with its own deadline: it
// also runs after ctx is cancelled.
func (s *backendSession) done(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := s.be.Cleanup(cctx)
	if cerr := s.be.Close(); err == nil {
		err = cerr
	}
	return err
}

// coldSync programs snap into an empty namespace and reads back what the
// kernel holds.
func (s *backendSession) coldSync(ctx context.Context, snap *ir.Snapshot) (time.Duration, int, KernelCount, error) {
	start := time.Now()
	rep, err := s.be.Sync(ctx, snap)
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, KernelCount{}, err
	}
	kc, err := countKernel(s.ns, tableName)
	return elapsed, rep.Changes, kc, err
}

// applyChanges makes n label changes in e and times the backend's Apply of
// each delta (UpsertPod and Delta are not timed here). snap is the snapshot
// the backend holds.
func (s *backendSession) applyChanges(ctx context.Context, e policy.Engine, snap *ir.Snapshot, f *flipper, n int) (ApplyStats, error) {
	var st ApplyStats
	size := make(map[string]int, len(snap.AddressSets))
	for _, as := range snap.AddressSets {
		size[as.ID] = len(as.Members)
	}
	ds := make([]time.Duration, 0, n)
	var cpu cpuTime
	for range n {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := e.UpsertPod(f.next()); err != nil {
			return st, err
		}
		d := e.Delta()
		for _, as := range d.AddedAddressSets {
			size[as.ID] = len(as.Members)
		}
		for _, ch := range d.AddressSetChanges {
			size[ch.ID] += len(ch.Added) - len(ch.Removed)
			st.TouchedSetMembersMax = max(st.TouchedSetMembersMax, size[ch.ID])
		}
		cpu.start()
		start := time.Now()
		if err := s.be.Apply(ctx, d); err != nil {
			return st, err
		}
		ds = append(ds, time.Since(start))
		cpu.stop()
	}
	st.Latencies = summarise(ds)
	st.UserMicrosPerApply = micros(cpu.user / time.Duration(n))
	st.SystemMicrosPerApply = micros(cpu.sys / time.Duration(n))
	return st, nil
}

func runBackend(ctx context.Context, cfg Config, l *lab.Lab, run *engineRun, progress func(string, ...any)) (_ *BackendFigures, err error) {
	ns, err := l.NodeNS(0)
	if err != nil {
		return nil, err
	}
	fig := &BackendFigures{Name: "nftables", Table: "inet " + tableName}
	// withSession runs fn on a fresh backend and always cleans up.
	withSession := func(fn func(s *backendSession) error) (err error) {
		s, err := openBackend(ns)
		if err != nil {
			return err
		}
		defer func() {
			if derr := s.done(ctx); err == nil {
				err = derr
			}
		}()
		return fn(s)
	}

	progress("backend: baseline cold Sync (no policy)")
	err = withSession(func(s *backendSession) error {
		elapsed, changes, kc, err := s.coldSync(ctx, run.baseline.Snapshot())
		fig.Baseline = BackendBaseline{ColdSyncSeconds: seconds(elapsed), ColdSyncChanges: changes, Kernel: kc}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	run.baseline = nil

	var syncAndRead time.Duration
	err = withSession(func(s *backendSession) error {
		progress("backend: cold Sync of the full snapshot")
		snap := run.full.Checkpoint()
		start := time.Now()
		elapsed, changes, kc, err := s.coldSync(ctx, snap)
		if err != nil {
			return fmt.Errorf("cold Sync: %w", err)
		}
		syncAndRead = time.Since(start)
		fig.ColdSyncSeconds, fig.ColdSyncChanges, fig.Kernel = seconds(elapsed), changes, kc

		progress("backend: no-op resyncs")
		// The median of several: one Sync right after the cold load also
		// pays for the garbage that load left.
		var noop []time.Duration
		for i := 0; i < noopResyncs; i++ {
			start = time.Now()
			rep, err := s.be.Sync(ctx, snap)
			if err != nil {
				return fmt.Errorf("no-op resync: %w", err)
			}
			noop = append(noop, time.Since(start))
			fig.NoopResyncChanges = max(fig.NoopResyncChanges, rep.Changes)
		}
		slices.Sort(noop)
		fig.NoopResyncSeconds = seconds(noop[len(noop)/2])

		progress("backend: %d one-pod label changes", cfg.Changes)
		fig.PodChange, err = s.applyChanges(ctx, run.full, snap, run.flip, cfg.Changes)
		if err != nil {
			return fmt.Errorf("pod change: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	run.full = nil

	// Size the large run: ten times the pods unless that would exceed the
	// budget, estimated as linear in the pods from the run just made.
	perX := run.genElapsed + run.compileElapsed + syncAndRead
	factor, note := largeFactor, ""
	if est := time.Duration(largeFactor) * perX; est > cfg.LargeBudget {
		factor = int(cfg.LargeBudget / max(perX, 1))
		used := fmt.Sprintf("used %dx", factor)
		if factor < 2 {
			used = "skipped (2x does not fit either)"
		}
		note = fmt.Sprintf("10x the pods was estimated at %v, over the %v budget (--large-budget): %s",
			est.Round(time.Millisecond), cfg.LargeBudget, used)
	}
	if factor < 2 {
		fig.PodChangeLarge = LargeRun{Note: note}
	} else {
		runtime.GC()
		large, err := runLarge(ctx, cfg, factor, withSession, progress)
		if err != nil {
			return nil, fmt.Errorf("large: %w", err)
		}
		large.Note = note
		if large.Kernel.Elements < 100_000 {
			large.Note = joinNote(large.Note, fmt.Sprintf("only %d kernel elements (under 100k): raise --pods to show flatness at scale", large.Kernel.Elements))
		}
		large.P50Ratio = ratio(large.P50Micros, fig.PodChange.P50Micros)
		fig.PodChangeLarge = *large
	}

	exists, err := tableExists(ns, tableName)
	if err != nil {
		return nil, err
	}
	fig.CleanedUp = !exists
	return fig, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// runLarge repeats the pod change with factor times the pods.
func runLarge(ctx context.Context, cfg Config, factor int, withSession func(func(*backendSession) error) error, progress func(string, ...any)) (*LargeRun, error) {
	pods := cfg.Pods * factor
	progress("backend: generating the %dx cluster (%d pods)", factor, pods)
	o, err := generate(ctx, cfg.synthetic(pods, cfg.Policies), nil)
	if err != nil {
		return nil, err
	}
	f, err := newFlipper(o)
	if err != nil {
		return nil, err
	}
	progress("backend: compiling the %dx cluster", factor)
	c, err := compile(ctx, policy.Config{}, o, false)
	if err != nil {
		return nil, err
	}
	lr := &LargeRun{
		Factor: factor, Pods: pods, Namespaces: cfg.Namespaces, Policies: cfg.Policies,
		Endpoints: c.counts.Endpoints, SetMembers: c.counts.SetMembers, CompileSeconds: seconds(c.elapsed),
	}
	err = withSession(func(s *backendSession) error {
		progress("backend: cold Sync of the %dx cluster", factor)
		snap := c.engine.Snapshot()
		elapsed, _, kc, err := s.coldSync(ctx, snap)
		if err != nil {
			return err
		}
		lr.ColdSyncSeconds, lr.Kernel = seconds(elapsed), kc
		progress("backend: %d one-pod label changes at %dx", cfg.Changes, factor)
		lr.ApplyStats, err = s.applyChanges(ctx, c.engine, snap, f, cfg.Changes)
		return err
	})
	return lr, err
}
