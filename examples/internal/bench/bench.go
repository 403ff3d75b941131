package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/policy/policytest"
)

// Limits on the configuration, so that every loop is bounded.
const (
	// MaxPods keeps the synthetic addresses, even at ten times the size,
	// inside 10.128.0.0/9.
	MaxPods          = 800_000
	maxChanges       = 1_000_000
	maxPolicies      = 1_000_000
	maxSamples       = 1_000_000
	maxParallel      = 1024
	maxDuration      = 5 * time.Minute
	maxLargeBudget   = 30 * time.Minute
	defaultBudget    = 30 * time.Second
	latencyTimeLimit = time.Minute // per latency series, whatever the sample count
)

// Config sizes a run. The zero value is not usable; Default returns the
// sizes DESIGN.md sets targets for.
type Config struct {
	Pods, Namespaces, Policies, Nodes int
	Seed                              uint64
	// Changes is the number of one-pod label changes timed (engine and
	// backend alike).
	Changes int
	// Backend is "nftables" (needs root; skipped with a note otherwise) or
	// "none".
	Backend string
	// LargeBudget bounds the 10x-pods backend run: when its estimated cost
	// exceeds it, the run uses the largest factor that fits (0: 30s).
	LargeBudget time.Duration

	// Datapath enables the datapath measurements (needs root).
	Datapath bool
	// DatapathPolicies are the policy counts measured, one run each.
	DatapathPolicies []int
	// DatapathSamples is the number of latency rounds per run, each one
	// connect through the node under test and one through the reference.
	DatapathSamples int
	// DatapathParallel workers connect in a loop for the connection rate,
	// DatapathDuration on each side per run.
	DatapathParallel int
	DatapathDuration time.Duration
	// DatapathVerdictLog adds the datapath with the kernel verdict log off,
	// deny and all, at the largest of DatapathPolicies.
	DatapathVerdictLog bool

	// Progress, when set, receives one line per step.
	Progress io.Writer
}

// Default returns the sizes of DESIGN.md's targets.
func Default() Config {
	return Config{
		Pods: 10_000, Namespaces: 500, Policies: 1_000, Nodes: 100, Seed: 1,
		Changes: 200, Backend: "nftables", LargeBudget: defaultBudget,
		DatapathPolicies: []int{0, 1_000, 10_000}, DatapathSamples: 5_000,
		DatapathParallel: 4, DatapathDuration: 2 * time.Second,
	}
}

// Validate reports every unusable field.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Pods >= 1 && c.Pods <= MaxPods, "--pods %d: want 1 to %d", c.Pods, MaxPods)
	check(c.Namespaces >= 1 && c.Namespaces <= MaxPods, "--namespaces %d: want 1 to %d", c.Namespaces, MaxPods)
	check(c.Policies >= 0 && c.Policies <= maxPolicies, "--policies %d: want 0 to %d", c.Policies, maxPolicies)
	check(c.Nodes >= 1 && c.Nodes <= MaxPods, "--nodes %d: want 1 to %d", c.Nodes, MaxPods)
	check(c.Changes >= 1 && c.Changes <= maxChanges, "--changes %d: want 1 to %d", c.Changes, maxChanges)
	check(c.Backend == "nftables" || c.Backend == "none", "--backend %q: want nftables or none", c.Backend)
	check(c.LargeBudget >= 0 && c.LargeBudget <= maxLargeBudget, "--large-budget %v: want 0 to %v", c.LargeBudget, maxLargeBudget)
	if c.Datapath {
		check(len(c.DatapathPolicies) > 0, "--datapath-policies: want at least one policy count")
		for _, k := range c.DatapathPolicies {
			check(k >= 0 && k <= maxPolicies, "--datapath-policies %d: want 0 to %d", k, maxPolicies)
		}
		check(c.DatapathSamples >= 1 && c.DatapathSamples <= maxSamples, "--datapath-samples %d: want 1 to %d", c.DatapathSamples, maxSamples)
		check(c.DatapathParallel >= 1 && c.DatapathParallel <= maxParallel, "--datapath-parallel %d: want 1 to %d", c.DatapathParallel, maxParallel)
		check(c.DatapathDuration > 0 && c.DatapathDuration <= maxDuration, "--datapath-duration %v: want more than 0, at most %v", c.DatapathDuration, maxDuration)
	}
	return errors.Join(errs...)
}

func (c Config) synthetic(pods, policies int) policytest.SyntheticConfig {
	return policytest.SyntheticConfig{Pods: pods, Namespaces: c.Namespaces, Policies: policies, Nodes: c.Nodes, Seed: c.Seed}
}

// Report is the JSON document netpolctl bench prints.
type Report struct {
	Config   ConfigReport   `json:"config"`
	Machine  Machine        `json:"machine"`
	Engine   *EngineFigures `json:"engine"`
	Backend  BackendReport  `json:"backend"`
	Datapath DatapathReport `json:"datapath"`
	// TotalSeconds is the wall time of the whole run.
	TotalSeconds float64 `json:"totalSeconds"`
}

// ConfigReport echoes the configuration.
type ConfigReport struct {
	Pods                    int     `json:"pods"`
	Namespaces              int     `json:"namespaces"`
	Policies                int     `json:"policies"`
	Nodes                   int     `json:"nodes"`
	Seed                    uint64  `json:"seed"`
	Changes                 int     `json:"changes"`
	Backend                 string  `json:"backend"`
	LargeBudgetSeconds      float64 `json:"largeBudgetSeconds"`
	Datapath                bool    `json:"datapath"`
	DatapathPolicies        []int   `json:"datapathPolicies"`
	DatapathSamples         int     `json:"datapathSamples"`
	DatapathParallel        int     `json:"datapathParallel"`
	DatapathDurationSeconds float64 `json:"datapathDurationSeconds"`
	DatapathVerdictLog      bool    `json:"datapathVerdictLog"`
}

// Machine describes where the figures were measured.
type Machine struct {
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"`
	Root       bool   `json:"root"`
	// LoadAverageStart and LoadAverageEnd are the 1, 5 and 15 minute load
	// averages when the run started and ended: other work on the machine
	// shows in them.
	LoadAverageStart []float64 `json:"loadAverageStart"`
	LoadAverageEnd   []float64 `json:"loadAverageEnd"`
}

func machine() Machine {
	m := Machine{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Root: os.Geteuid() == 0,
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.LoadAverageStart = loadAverage()
	return m
}

// loadAverage reads /proc/loadavg; nil when it cannot.
func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var la [3]float64
	if _, err := fmt.Sscanf(string(b), "%g %g %g", &la[0], &la[1], &la[2]); err != nil {
		return nil
	}
	return la[:]
}

// BackendReport is the backend's figures, or why they were not measured.
type BackendReport struct {
	Skipped string `json:"skipped,omitempty"`
	*BackendFigures
}

// DatapathReport is the datapath's figures, or why they were not measured.
type DatapathReport struct {
	Skipped string `json:"skipped,omitempty"`
	*DatapathFigures
}

const needsRoot = "needs root (it creates network namespaces and programs nftables inside them); run as root"

// Run measures. Everything it creates in the kernel lives in lab network
// namespaces and is removed before it returns, on error and when ctx is
// cancelled (Ctrl-C) too.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.LargeBudget == 0 {
		cfg.LargeBudget = defaultBudget
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: %6.1fs "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
		}
	}
	rep := &Report{
		Config: ConfigReport{
			Pods: cfg.Pods, Namespaces: cfg.Namespaces, Policies: cfg.Policies, Nodes: cfg.Nodes, Seed: cfg.Seed,
			Changes: cfg.Changes, Backend: cfg.Backend, LargeBudgetSeconds: cfg.LargeBudget.Seconds(),
			Datapath: cfg.Datapath, DatapathPolicies: cfg.DatapathPolicies, DatapathSamples: cfg.DatapathSamples,
			DatapathParallel: cfg.DatapathParallel, DatapathDurationSeconds: cfg.DatapathDuration.Seconds(), DatapathVerdictLog: cfg.DatapathVerdictLog,
		},
		Machine: machine(),
	}

	eng, run, err := runEngine(ctx, cfg, progress)
	if err != nil {
		return nil, err
	}
	rep.Engine = eng

	root := os.Geteuid() == 0
	var l *lab.Lab
	if root && (cfg.Backend == "nftables" || cfg.Datapath) {
		progress("lab: %d node(s)", labNodes(cfg))
		l, err = lab.New(ctx, lab.Config{Nodes: labNodes(cfg), Parallelism: max(cfg.DatapathParallel, 1)})
		if err != nil {
			return nil, err
		}
		defer l.Close()
	}

	switch {
	case cfg.Backend == "none":
		rep.Backend.Skipped = "--backend none"
	case !root:
		rep.Backend.Skipped = needsRoot
	default:
		if rep.Backend.BackendFigures, err = runBackend(ctx, cfg, l, run, progress); err != nil {
			return nil, fmt.Errorf("backend: %w", err)
		}
	}
	run = nil // release the engines before the datapath runs
	runtime.GC()

	switch {
	case !cfg.Datapath:
		rep.Datapath.Skipped = "not requested (--datapath)"
	case !root:
		rep.Datapath.Skipped = needsRoot
	default:
		if rep.Datapath.DatapathFigures, err = runDatapath(ctx, cfg, l, progress); err != nil {
			return nil, fmt.Errorf("datapath: %w", err)
		}
	}
	if l != nil {
		if err := l.Close(); err != nil {
			return nil, fmt.Errorf("closing the lab: %w", err)
		}
	}
	rep.TotalSeconds = seconds(time.Since(start))
	rep.Machine.LoadAverageEnd = loadAverage()
	progress("done")
	return rep, nil
}

// labNodes is one node for the backend figures, two when the datapath runs
// (the second is its reference).
func labNodes(cfg Config) int {
	if cfg.Datapath {
		return 2
	}
	return 1
}
