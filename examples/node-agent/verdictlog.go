package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-net/palisade/backend"
	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/informer/prommetrics"
	"github.com/palisade-net/palisade/policy"
)

// The verdict log: --log-verdicts turns on the backend's NFLOG rules and a
// reader of their group that writes one JSON record per verdict.
const (
	logOff  = "off"
	logDeny = "deny"
	logAll  = "all"

	defaultLogGroup = 100
)

// logOptions are the verdict log's flags.
type logOptions struct {
	mode  string
	rate  uint
	file  string
	group uint
}

func (lo *logOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&lo.mode, "log-verdicts", logOff, `kernel verdict log: off; deny (every denied new connection, and the allowed ones of policies or namespaces annotated palisade.dev/log-allowed: "true"); all (every allowed new connection too)`)
	fs.UintVar(&lo.rate, "log-rate", verdictlog.DefaultRate, "verdict log budget of the node, records per second, enforced in the kernel (iptables: per IP family); packets past it are judged but not logged")
	fs.StringVar(&lo.file, "log-file", "", "file the verdict records are appended to, one JSON object per line (default: standard output)")
	fs.UintVar(&lo.group, "log-group", defaultLogGroup, "NFLOG group of the verdict log (0-65535); no other process may listen on it in the node's network namespace")
}

func (lo *logOptions) validate() []error {
	var errs []error
	switch lo.mode {
	case logOff, logDeny, logAll:
	default:
		errs = append(errs, fmt.Errorf("--log-verdicts %q: must be off, deny or all", lo.mode))
	}
	if lo.rate == 0 || lo.rate > verdictlog.MaxRate {
		errs = append(errs, fmt.Errorf("--log-rate %d: must be 1 to %d", lo.rate, verdictlog.MaxRate))
	}
	if lo.group > 65535 {
		errs = append(errs, fmt.Errorf("--log-group %d: must be 0 to 65535", lo.group))
	}
	return errs
}

// logging is what the backend logs.
func (lo *logOptions) logging() verdictlog.Logging {
	if lo.mode == logOff || lo.mode == "" {
		return verdictlog.Logging{}
	}
	return verdictlog.Logging{Enabled: true, Group: uint16(lo.group), Rate: uint32(lo.rate), Allowed: lo.mode == logAll}
}

// startVerdictLog starts the reader of the verdict log in the backend's
// namespace (netnsPath, or the agent's own) and returns be wrapped so that
// the reader knows the rule lists it programs. Pods are named from the
// engine's view. With --log-verdicts=off it returns be and does nothing.
// stop ends the reader and closes the file.
func startVerdictLog(ctx context.Context, o *options, be backend.Backend, engine policy.Engine, reg prometheus.Registerer, stdout io.Writer, log logr.Logger) (_ backend.Backend, stop func(), err error) {
	lg := o.log.logging()
	if !lg.Enabled {
		return be, func() {}, nil
	}
	instruments, err := prommetrics.VerdictLog(reg)
	if err != nil {
		return nil, nil, err
	}
	out, closeOut := stdout, func() error { return nil }
	if o.log.file != "" {
		f, err := os.OpenFile(o.log.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		out, closeOut = f, f.Close
	}
	netnsFD := 0
	if o.netns != "" {
		f, err := os.Open(o.netns)
		if err != nil {
			_ = closeOut()
			return nil, nil, fmt.Errorf("--netns: %w", err)
		}
		defer f.Close() // the socket keeps its namespace
		netnsFD = int(f.Fd())
	}
	cat := verdictlog.NewCatalog(engine.PodAt)
	rd, err := verdictlog.Open(verdictlog.Config{NetNS: netnsFD, Group: lg.Group, Node: o.nodeName, Resolver: cat, Instruments: instruments})
	if err != nil {
		_ = closeOut()
		return nil, nil, fmt.Errorf("--log-verdicts: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var warned bool
		err := rd.Run(rctx, func(ev *verdictlog.Event) {
			if err := verdictlog.WriteJSON(out, &ev.Record); err != nil && !warned {
				warned = true // once: a full disk must not flood the agent's own log
				log.Error(err, "Cannot write the verdict log; records are lost until it can")
			}
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Error(err, "The verdict log reader stopped; verdicts are still enforced, no longer logged")
		}
	}()
	log.Info("Logging verdicts", "mode", o.log.mode, "group", lg.Group, "rate", lg.Rate, "file", o.log.file)
	return verdictlog.Track(be, cat), func() {
		cancel()
		wg.Wait()
		_ = closeOut()
	}, nil
}
