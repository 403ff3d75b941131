package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/policy/ir"
)

// Mode selects the iptables variant.
type Mode string

const (
	// ModeAuto uses the variant whose tables hold more rules (see
	// detectMode), or on a tie the one `iptables --version` reports; the
	// empty Mode means the same.
	ModeAuto Mode = "auto"
	// ModeNFT uses iptables-nft (the nf_tables kernel API).
	ModeNFT Mode = "nft"
	// ModeLegacy uses iptables-legacy (the x_tables kernel API).
	ModeLegacy Mode = "legacy"
)

// Config configures a Backend. Only the namespace must be given: NetNS, or
// AllowCurrentNamespace to program the caller's own, or a Runner (which
// then decides where commands run).
type Config struct {
	// NetNS is a file descriptor of the network namespace to program. The
	// backend keeps its own duplicate; Close releases it. Zero means unset.
	NetNS int
	// AllowCurrentNamespace programs the namespace of the process when NetNS
	// is unset. Without it (and without a Runner), New refuses to start, so
	// that a forgotten NetNS never programs the host.
	AllowCurrentNamespace bool
	// ChainPrefix names our chains (PREFIX-FWD, PREFIX-L<hash>, …);
	// DefaultChainPrefix when empty.
	ChainPrefix string
	// SetPrefix names our ipsets (prefix-a4-<id>, …); DefaultSetPrefix when
	// empty.
	SetPrefix string
	// Mode is the iptables variant; ModeAuto when empty.
	Mode Mode
	// AllowMark and PassMark are single packet-mark bits, distinct, used
	// while one direction is checked and cleared afterwards; defaults
	// DefaultAllowMark and DefaultPassMark.
	AllowMark, PassMark uint32
	// Runner runs the commands; the default runs them inside NetNS (or the
	// current namespace). Tests inject a fake.
	Runner Runner
	// Log turns on the kernel's verdict log (NFLOG) and says what it
	// records; the zero value logs nothing. See package verdictlog.
	Log verdictlog.Logging
}

// Backend programs the IR into iptables chains and ipsets of its own.
// It implements backend.Backend; its methods serialise.
type Backend struct {
	n      *names
	run    Runner
	ns     netns.NsHandle // our duplicate of Config.NetNS, or -1
	bins   binaries
	binsOK bool
	mode   Mode
	log    verdictlog.Logging

	mu    sync.Mutex
	st    *state // nil before the first Sync
	dirty bool   // st may not match the kernel: Apply refuses, Sync reads back
}

type binaries struct {
	save, restore [2]string
}

var _ backend.Backend = (*Backend)(nil)

// New checks cfg and prepares a Backend. It runs nothing and changes
// nothing; the iptables variant is resolved on first use.
func New(cfg Config) (*Backend, error) {
	if cfg.ChainPrefix == "" {
		cfg.ChainPrefix = DefaultChainPrefix
	}
	if cfg.SetPrefix == "" {
		cfg.SetPrefix = DefaultSetPrefix
	}
	if cfg.AllowMark == 0 {
		cfg.AllowMark = DefaultAllowMark
	}
	if cfg.PassMark == 0 {
		cfg.PassMark = DefaultPassMark
	}
	if err := checkPrefixes(cfg.ChainPrefix, cfg.SetPrefix); err != nil {
		return nil, err
	}
	if bits.OnesCount32(cfg.AllowMark) != 1 || bits.OnesCount32(cfg.PassMark) != 1 || cfg.AllowMark == cfg.PassMark {
		return nil, fmt.Errorf("iptables: AllowMark %#x and PassMark %#x must be two distinct single bits", cfg.AllowMark, cfg.PassMark)
	}
	if err := cfg.Log.Validate(); err != nil {
		return nil, fmt.Errorf("iptables: Config.Log: %w", err)
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	switch cfg.Mode {
	case ModeAuto, ModeNFT, ModeLegacy:
	default:
		return nil, fmt.Errorf("iptables: unknown mode %q", cfg.Mode)
	}
	b := &Backend{
		n:    &names{chain: cfg.ChainPrefix, set: cfg.SetPrefix, allow: cfg.AllowMark, pass: cfg.PassMark},
		run:  cfg.Runner,
		ns:   -1,
		mode: cfg.Mode,
		log:  cfg.Log,
	}
	if b.run == nil {
		switch {
		case cfg.NetNS > 0:
			fd, err := unix.FcntlInt(uintptr(cfg.NetNS), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("iptables: NetNS %d: %w", cfg.NetNS, err)
			}
			b.ns = netns.NsHandle(fd)
			b.run = &nsRunner{ns: b.ns}
		case cfg.AllowCurrentNamespace:
			b.run = &nsRunner{current: true}
		default:
			return nil, errors.New("iptables: Config.NetNS is unset: give the namespace to program, or set AllowCurrentNamespace")
		}
	}
	return b, nil
}

// Close releases the namespace handle. Chains and sets stay (see Cleanup).
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ns >= 0 {
		err := b.ns.Close()
		b.ns = -1
		return err
	}
	return nil
}

// Mode returns the iptables variant in use, resolving ModeAuto.
func (b *Backend) Mode(ctx context.Context) (Mode, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.resolve(ctx); err != nil {
		return "", err
	}
	return b.mode, nil
}

func (b *Backend) resolve(ctx context.Context) error {
	if b.binsOK {
		return nil
	}
	if b.mode == ModeAuto {
		m, err := detectMode(ctx, b.run)
		if err != nil {
			return err
		}
		b.mode = m
	}
	v := string(b.mode)
	b.bins = binaries{
		save:    [2]string{"iptables-" + v + "-save", "ip6tables-" + v + "-save"},
		restore: [2]string{"iptables-" + v + "-restore", "ip6tables-" + v + "-restore"},
	}
	b.binsOK = true
	return nil
}

// detectMode picks the variant whose tables hold more rules, counting the
// rules iptables-legacy-save and iptables-nft-save (and their IPv6
// counterparts) print, as Kubernetes' iptables wrapper does: a node's
// components must all use the variant that is in use, and the one with
// rules is that one. A variant whose commands are missing counts as
// absent; a tie (a fresh namespace) goes to the variant `iptables
// --version` names, the node's default.
func detectMode(ctx context.Context, run Runner) (Mode, error) {
	count := func(m Mode) (int, bool) {
		n := 0
		for _, save := range []string{"iptables-" + string(m) + "-save", "ip6tables-" + string(m) + "-save"} {
			out, err := run.Run(ctx, save, nil, nil)
			if err != nil {
				return 0, false
			}
			for _, line := range bytes.Split(out, []byte("\n")) {
				if bytes.HasPrefix(line, []byte("-A ")) {
					n++
				}
			}
		}
		return n, true
	}
	legacy, legacyOK := count(ModeLegacy)
	nft, nftOK := count(ModeNFT)
	switch {
	case legacyOK && (!nftOK || legacy > nft):
		return ModeLegacy, nil
	case nftOK && (!legacyOK || nft > legacy):
		return ModeNFT, nil
	}
	out, err := run.Run(ctx, "iptables", []string{"--version"}, nil)
	if err != nil {
		return "", fmt.Errorf("iptables: probing the variant: %w", err)
	}
	// "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)"; older
	// releases print no variant and are legacy.
	if bytes.Contains(out, []byte("nf_tables")) {
		return ModeNFT, nil
	}
	return ModeLegacy, nil
}

// Sync reads our chains and sets back, makes them equal to snap (creating,
// rewriting or deleting only what differs) and reports the changes; drift
// from what the last Sync or Apply programmed is listed in Repairs. An
// invalid snapshot changes nothing.
func (b *Backend) Sync(ctx context.Context, snap *ir.Snapshot) (backend.SyncReport, error) {
	if snap == nil {
		return backend.SyncReport{}, fmt.Errorf("iptables: Sync: %w: nil snapshot", ir.ErrInvalid)
	}
	if err := snap.Validate(); err != nil {
		return backend.SyncReport{}, fmt.Errorf("iptables: Sync of generation %d: %w", snap.Generation, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.resolve(ctx); err != nil {
		return backend.SyncReport{}, err
	}
	// Compile while the kernel state is read back.
	var fresh *state
	var buildErr error
	built := make(chan struct{})
	go func() {
		defer close(built)
		fresh, buildErr = buildLogging(b.n, snap, b.log)
	}()
	k, err := b.read(ctx)
	<-built
	if buildErr != nil {
		return backend.SyncReport{}, fmt.Errorf("iptables: snapshot %d: %w", snap.Generation, buildErr)
	}
	if err != nil {
		return backend.SyncReport{}, err
	}
	var repairs []string
	if b.st != nil && !b.dirty {
		_, repairs = planDiff(b.n, k, b.st.m, true)
	}
	replaced := 0
	if bad := wrongSets(k, fresh.m); len(bad) > 0 {
		// Replaced within this Sync, as the nftables backend does: first
		// the references move to stand-ins, then the normal plan below.
		for _, name := range bad {
			hs, ws := k.sets[name], fresh.m.sets[name]
			repairs = append(repairs, fmt.Sprintf("set %s: %s family %s, want %s family %s: replaced", name, hs.typ, famWord(hs.fam), ws.typ, famWord(ws.fam)))
		}
		p := planReplaceSets(b.n, k, fresh.m, bad)
		if err := b.execute(ctx, p); err != nil {
			b.dirty = true
			return backend.SyncReport{}, fmt.Errorf("iptables: replacing sets of the wrong type: %w", err)
		}
		replaced = p.n
		if k, err = b.read(ctx); err != nil {
			b.dirty = true
			return backend.SyncReport{}, err
		}
	}
	p, _ := planDiff(b.n, k, fresh.m, false)
	if p.err != nil {
		return backend.SyncReport{}, p.err
	}
	if err := b.execute(ctx, p); err != nil {
		b.dirty = true
		return backend.SyncReport{}, err
	}
	b.st, b.dirty = fresh, false
	return backend.SyncReport{Generation: snap.Generation, Changes: replaced + p.n, Repairs: repairs}, nil
}

// Apply applies a delta to the state of the last Sync or Apply: member
// changes as one ipset restore batch, and the chains it touches rewritten
// in one iptables-restore --noflush per family. It fails, changing nothing,
// when d.Base is not the generation held or d does not fit it; after a
// kernel error the caller must Sync.
func (b *Backend) Apply(ctx context.Context, d *ir.Delta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var held uint64
	if b.st != nil {
		held = b.st.gen
	}
	if err := backend.CheckApply(ctx, "iptables", d, b.st != nil, b.dirty, held); err != nil {
		return err
	}
	if err := b.st.check(d); err != nil {
		return fmt.Errorf("iptables: delta %d→%d: %w", d.Base, d.Generation, err)
	}
	b.st.ops = newOps()
	if err := b.st.apply(d); err != nil {
		b.dirty = true
		return fmt.Errorf("iptables: delta %d→%d: %w", d.Base, d.Generation, err)
	}
	p := planOps(b.st)
	b.st.ops = newOps()
	if err := b.execute(ctx, p); err != nil {
		b.dirty = true
		return err
	}
	return nil
}

// Cleanup removes the rules entering our chains, our chains and our sets.
// It succeeds when there is nothing to remove.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.resolve(ctx); err != nil {
		return err
	}
	k, err := b.read(ctx)
	if err != nil {
		return err
	}
	p, _ := planDiff(b.n, k, nil, false)
	b.st, b.dirty = nil, false
	return b.execute(ctx, p)
}

// read returns our part of the kernel state.
func (b *Backend) read(ctx context.Context) (*kernel, error) {
	return b.readWith(ctx, func(ctx context.Context) (map[string]*setModel, error) {
		out, err := b.run.Run(ctx, "ipset", []string{"save"}, nil)
		if err != nil {
			return nil, fmt.Errorf("iptables: reading ipsets: %w", err)
		}
		return parseIPSetSave(b.n, out)
	})
}

// readWith returns our chains and the rules entering them, as read, and
// our sets as readSets returns them (run beside the two iptables-save).
func (b *Backend) readWith(ctx context.Context, readSets func(context.Context) (map[string]*setModel, error)) (*kernel, error) {
	k := &kernel{}
	var wg sync.WaitGroup
	var errs [3]error
	for f := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.run.Run(ctx, b.bins.save[f], []string{"-t", "filter"}, nil)
			if err != nil {
				errs[f] = fmt.Errorf("iptables: reading the %s filter table: %w", familyName(families[f]), err)
				return
			}
			raw, err := b.run.Run(ctx, b.bins.save[f], []string{"-t", "raw"}, nil)
			if err != nil {
				errs[f] = fmt.Errorf("iptables: reading the %s raw table: %w", familyName(families[f]), err)
				return
			}
			k.chains[f], k.hooks[f], k.ahead[f], errs[f] = parseSave(b.n, append(out, raw...))
		}()
	}
	k.sets, errs[2] = readSets(ctx)
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return k, nil
}

// execute runs a plan: ipset, iptables, ip6tables, ipset.
func (b *Backend) execute(ctx context.Context, p *plan) error {
	if in := ipsetInput(p.pre); in != nil {
		if _, err := b.run.Run(ctx, "ipset", []string{"restore", "-exist"}, in); err != nil {
			return fmt.Errorf("iptables: loading ipsets: %w", err)
		}
	}
	// The two tables are independent: load them side by side.
	var errs [2]error
	var wg sync.WaitGroup
	for f := range p.tables {
		if in := p.tables[f].restoreInput(); in != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.run.Run(ctx, b.bins.restore[f], []string{"-w", "5", "--noflush"}, in); err != nil {
					errs[f] = fmt.Errorf("iptables: loading the %s rules: %w", familyName(families[f]), err)
				}
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	if in := ipsetInput(p.post); in != nil {
		// A set whose last rule went in this very change may still be held
		// for a moment (the kernel releases it after a grace period): a
		// failed destroy is retried, by exit code, a few times.
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			if _, err = b.run.Run(ctx, "ipset", []string{"restore", "-exist"}, in); err == nil || ExitCode(err) < 0 {
				break
			}
			left, lerr := b.run.Run(ctx, "ipset", []string{"list", "-n"}, nil)
			if lerr != nil {
				return fmt.Errorf("iptables: removing ipsets: %w (then: %w)", err, lerr)
			}
			in = ipsetInput(stillPresent(p.post, left))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("iptables: removing ipsets: %w", err)
		}
	}
	return nil
}

// stillPresent is what to retry of a post batch: the destroys of sets
// still listed (member deletes were done or are moot).
func stillPresent(lines []string, listed []byte) []string {
	present := map[string]bool{}
	for _, name := range strings.Fields(string(listed)) {
		present[name] = true
	}
	var out []string
	for _, l := range lines {
		if name, ok := strings.CutPrefix(l, "destroy "); ok && present[name] {
			out = append(out, l)
		}
	}
	return out
}

var _ backend.Verifier = (*Backend)(nil)

// Installed reports whether any chain or ipset of ours exists, or a rule
// entering our chains.
func (b *Backend) Installed(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.resolve(ctx); err != nil {
		return false, err
	}
	k, err := b.read(ctx)
	if err != nil {
		return false, err
	}
	for f := range 2 {
		if len(k.chains[f]) > 0 || len(k.hooks[f]) > 0 {
			return true, nil
		}
	}
	return len(k.sets) > 0, nil
}

// Drift reads our chains and sets back and lists what differs from the
// state of the last Sync or Apply.
func (b *Backend) Drift(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return nil, fmt.Errorf("iptables: Drift before the first Sync: %w", backend.ErrNotSynced)
	case b.dirty:
		return nil, fmt.Errorf("iptables: Drift: %w", backend.ErrDirty)
	}
	return b.drift(ctx)
}

var _ backend.DriftWatcher = (*Backend)(nil)

// Changed reads our chains and the position of our jumps back
// (iptables-save of the filter table per family) and the names of our sets
// (ipset list -n), and reports whether any of them differs from the state
// of the last Sync or Apply: a chain flushed, edited, removed or added, a
// jump missing or no longer first, a set missing or added. It does not read
// set members (a member removed by hand waits for the periodic resync): at
// 10k endpoints the members are most of the cost of a read. It is false
// before the first Sync and after Cleanup, true after a change of ours
// failed part-way. Rules and sets that are not ours are not compared.
func (b *Backend) Changed(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == nil:
		return false, nil
	case b.dirty:
		return true, nil
	}
	if err := b.resolve(ctx); err != nil {
		return false, err
	}
	k, err := b.readWith(ctx, func(ctx context.Context) (map[string]*setModel, error) {
		out, err := b.run.Run(ctx, "ipset", []string{"list", "-n"}, nil)
		if err != nil {
			return nil, fmt.Errorf("iptables: listing ipsets: %w", err)
		}
		// A set of ours that is there counts as holding what we put in
		// it; one we did not make counts as foreign.
		sets := map[string]*setModel{}
		for _, name := range strings.Fields(string(out)) {
			if !b.n.ourSet(name) {
				continue
			}
			if want, ok := b.st.m.sets[name]; ok {
				sets[name] = want
			} else {
				sets[name] = &setModel{}
			}
		}
		return sets, nil
	})
	if err != nil {
		return false, err
	}
	_, drift := planDiff(b.n, k, b.st.m, true)
	return len(drift) > 0, nil
}

// drift lists what differs between the kernel and b.st; b.mu is held and
// b.st is known.
func (b *Backend) drift(ctx context.Context) ([]string, error) {
	if err := b.resolve(ctx); err != nil {
		return nil, err
	}
	k, err := b.read(ctx)
	if err != nil {
		return nil, err
	}
	_, drift := planDiff(b.n, k, b.st.m, true)
	return drift, nil
}
