package reach

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/palisade-net/palisade/backend/verdictlog"
	"github.com/palisade-net/palisade/examples/internal/flows"
	"github.com/palisade-net/palisade/policy/ir"
)

// Logged is one distinct flow of a verdict log (verdictlog.Record lines):
// records with the same src, dst, port and protocol, counted.
type Logged struct {
	Flow Flow
	// Count is how many records named the flow; Allowed and Denied how
	// many of them logged each verdict.
	Count, Allowed, Denied int
}

// LogStats says what ReadVerdictLog read.
type LogStats struct {
	// Records is the number of records read; Skipped those of a protocol
	// network policy ports cannot name (ICMP, other IP protocols), which
	// are not replayed.
	Records, Skipped int
}

// ReadVerdictLogFile is ReadVerdictLog of a file.
func ReadVerdictLogFile(path string) ([]Logged, LogStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, LogStats{}, err
	}
	defer f.Close()
	return ReadVerdictLog(path, f)
}

// ReadVerdictLog reads verdict-log records (one JSON object per line, the
// verdictlog.Record schema; blank lines skipped) from r, named name in
// errors, and returns the distinct flows in order of first appearance.
// A line that is not a record, or whose src, dst, port, protocol or
// verdict cannot be read, is an error naming the line and field; every bad
// line is reported. An empty log gives no flows.
func ReadVerdictLog(name string, r io.Reader) ([]Logged, LogStats, error) {
	var out []Logged
	var st LogStats
	var errs []error
	at := map[[4]string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec verdictlog.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: not a verdict-log record: %w", name, n, err))
			continue
		}
		st.Records++
		switch rec.Protocol {
		case "TCP", "UDP", "SCTP":
		case "":
			errs = append(errs, fmt.Errorf("%s:%d: protocol: Required value", name, n))
			continue
		default:
			st.Skipped++
			continue
		}
		f, err := recordFlow(rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		key := [4]string{rec.Src, rec.Dst, strconv.Itoa(int(rec.Port)), rec.Protocol}
		i, seen := at[key]
		if !seen {
			i = len(out)
			at[key] = i
			out = append(out, Logged{Flow: Flow{Flow: f}})
		}
		out[i].Count++
		if rec.Verdict == verdictlog.VerdictAllow {
			out[i].Allowed++
		} else {
			out[i].Denied++
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, st, err
	}
	return out, st, nil
}

// recordFlow reads the flow of a record, checking every field it uses;
// the error names each bad one.
func recordFlow(rec verdictlog.Record) (flows.Flow, error) {
	var f flows.Flow
	var bad []string
	var err error
	if f.Src, err = flows.ParseEnd(rec.Src); err != nil {
		bad = append(bad, "src: "+err.Error())
	}
	if f.Dst, err = flows.ParseEnd(rec.Dst); err != nil {
		bad = append(bad, "dst: "+err.Error())
	}
	if f.Port = rec.Port; f.Port == 0 {
		bad = append(bad, "port: Required value: a "+rec.Protocol+" record names its destination port")
	}
	f.Protocol, _ = ir.ParseProtocol(rec.Protocol) // checked by the caller
	switch rec.Verdict {
	case verdictlog.VerdictAllow, verdictlog.VerdictDeny:
	default:
		bad = append(bad, fmt.Sprintf("verdict: Unsupported value: %q: want %q or %q", rec.Verdict, verdictlog.VerdictAllow, verdictlog.VerdictDeny))
	}
	if len(bad) > 0 {
		return f, errors.New(strings.Join(bad, "; "))
	}
	return f, nil
}
