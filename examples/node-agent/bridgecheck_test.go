package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/record"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/bridgenf"
)

// events drains what a fake recorder holds.
func events(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// bridgedLab is a one-node lab with a dual-stack pod on the node's bridge,
// and agent options pointing --netns at the node's namespace.
func bridgedLab(t *testing.T, mode string) (*lab.Lab, *options) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds a lab of network namespaces and turns br_netfilter off and on in one")
	}
	l, err := lab.New(context.Background(), lab.Config{Topology: lab.Bridge})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	require.NoError(t, l.AddPod(context.Background(), lab.PodSpec{Name: "x/a",
		IPs: []netip.Addr{netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("fd00::10")}}))
	ns, err := l.NodeNS(0)
	require.NoError(t, err)
	return l, &options{nodeName: "node-a", netns: fmt.Sprintf("/proc/self/fd/%d", int(ns)), bridgeNetfilter: mode}
}

// With br_netfilter off in the node namespace the agent is not ready and
// says why (/readyz, log, Event on its Node, metric); on again, it is ready.
func TestBridgeCheckInLab(t *testing.T) {
	l, o := bridgedLab(t, bridgeCheck)
	reg := prometheus.NewRegistry()
	rec := record.NewFakeRecorder(10)
	var logs lines
	w, closeNS, err := newBridgeWatch(o, reg, rec, funcr.New(logs.add, funcr.Options{}))
	require.NoError(t, err)
	defer closeNS()
	w.logEvery = time.Minute
	readyz := func() (int, string) {
		r := httptest.NewRecorder()
		readyHandler(w.err)(r, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return r.Code, r.Body.String()
	}
	t0 := time.Now()

	w.observe(t0)
	code, _ := readyz()
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, testutil.ToFloat64(w.ok.(prometheus.Gauge)))
	assert.Empty(t, events(rec))
	assert.Empty(t, logs.get())

	require.NoError(t, l.SetBridgeNetfilter(0, false))
	for s := range 3 { // one line and one Event, not one per check
		w.observe(t0.Add(time.Duration(10*(s+1)) * time.Second))
	}
	code, body := readyz()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not ready: bridge cni0 has ports but net.bridge.bridge-nf-call-iptables and net.bridge.bridge-nf-call-ip6tables is 0: traffic between pods on it bypasses the packet filter (set it to 1)\n", body)
	assert.Equal(t, 0.0, testutil.ToFloat64(w.ok.(prometheus.Gauge)))
	ev := events(rec)
	require.Len(t, ev, 1)
	assert.True(t, strings.HasPrefix(ev[0], "Warning BridgedTrafficUnfiltered bridge cni0 has ports"), ev[0])
	require.Len(t, logs.get(), 1)
	assert.Contains(t, logs.get()[0], "Cannot enforce policy for bridged pods; not ready")

	w.observe(t0.Add(2 * time.Minute)) // past logEvery: a reminder
	require.Len(t, logs.get(), 2)
	assert.Contains(t, logs.get()[1], `"for"="1m50s"`)

	require.NoError(t, l.SetBridgeNetfilter(0, true))
	w.observe(t0.Add(3 * time.Minute))
	code, _ = readyz()
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1.0, testutil.ToFloat64(w.ok.(prometheus.Gauge)))
	assert.Equal(t, []string{"Normal BridgedTrafficFiltered bridged pod traffic reaches the packet filter again"}, events(rec))
	assert.Contains(t, logs.get()[2], "Bridged pod traffic reaches the packet filter again")
}

// --bridge-netfilter=enable turns br_netfilter back on at the next check:
// the agent stays ready and says what it changed.
func TestBridgeCheckEnable(t *testing.T) {
	l, o := bridgedLab(t, bridgeEnable)
	rec := record.NewFakeRecorder(10)
	var logs lines
	w, closeNS, err := newBridgeWatch(o, prometheus.NewRegistry(), rec, funcr.New(logs.add, funcr.Options{}))
	require.NoError(t, err)
	defer closeNS()

	require.NoError(t, l.SetBridgeNetfilter(0, false))
	w.observe(time.Now())
	assert.NoError(t, w.err())
	ev := events(rec)
	require.Len(t, ev, 1)
	assert.True(t, strings.HasPrefix(ev[0], "Normal BridgeNetfilterEnabled turned br_netfilter on: bridge cni0 has ports"), ev[0])
	require.Len(t, logs.get(), 1)

	ns, err := l.NodeNS(0)
	require.NoError(t, err)
	st, err := bridgenf.Check(bridgenf.Config{NetNS: int(ns)})
	require.NoError(t, err)
	assert.True(t, st.CallIPTables && st.CallIP6Tables, "the settings are on again")
}

// A check that cannot run counts as unfiltered: nothing says it is not.
func TestBridgeCheckFailureIsNotReady(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	w := &bridgeWatch{
		check:  func() (bridgenf.Status, error) { return bridgenf.Status{}, fmt.Errorf("netlink: permission denied") },
		log:    funcr.New(func(string, string) {}, funcr.Options{}),
		ok:     &fakeGauge{},
		events: rec,
		node:   nodeRef("node-a"),
	}
	w.observe(time.Now())
	require.Error(t, w.err())
	assert.Contains(t, w.err().Error(), "cannot check whether bridged pod traffic reaches the packet filter: netlink: permission denied")
	v, _ := w.ok.(*fakeGauge).get()
	assert.Equal(t, 0.0, v)
}
