package cluster

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

var metricsClient = &http.Client{Timeout: 2 * time.Second}

// Metrics scrapes the agent's /metrics endpoint and returns every sample
// without labels, and with labels as `name{labels}`, keyed as written in the
// exposition (e.g. "palisade_programmed_generation",
// `palisade_errors_total{kind="apply"}`).
func (a *Agent) Metrics() (map[string]float64, error) {
	resp, err := metricsClient.Get("http://" + a.MetricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// Metric returns one sample of Metrics; an absent sample is an error.
func (a *Agent) Metric(name string) (float64, error) {
	m, err := a.Metrics()
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("metric %s not exposed", name)
	}
	return v, nil
}

// RSS returns the agent process's resident set size (VmRSS of
// /proc/<pid>/status), in bytes.
func (p *Process) RSS() (int64, error) {
	return procStatusKB(p.Pid(), "VmRSS:")
}

// PeakRSS returns VmHWM, the peak resident set size, in bytes.
func (p *Process) PeakRSS() (int64, error) {
	return procStatusKB(p.Pid(), "VmHWM:")
}

func procStatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}
