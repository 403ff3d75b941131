package verdictlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/backendtest/lab"
	"github.com/palisade-net/palisade/backend/verdictlog"
	. "github.com/palisade-net/palisade/policy/ir/irtest"
)

// TestDecodeCaptured decodes the messages the kernel sends for real probes
// (IPv4 and IPv6; TCP, UDP, SCTP). With PALISADE_WRITE_SEEDS=1 it writes
// them to testdata/fuzz as seeds of the fuzz tests.
func TestDecodeCaptured(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, ns := newLab(ctx, t)
	const group = 10
	be, err := kernelBackends["nftables"](int(ns), verdictlog.Logging{Enabled: true, Group: group, Rate: 10000, Allowed: true})
	require.NoError(t, err)
	_, err = be.Sync(ctx, logSnapshot())
	require.NoError(t, err)

	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(ns)})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: verdictlog.MsgTypeConfig, Flags: netlink.Request | netlink.Acknowledge},
		Data:   verdictlog.BindMessage(group),
	})
	require.NoError(t, err)

	probes := []lab.Probe{
		{Src: "ns/a", Dst: Addr("10.0.0.2"), Port: 80, Protocol: lab.TCP},
		{Src: "ns/a", Dst: Addr("fd00::2"), Port: 81, Protocol: lab.TCP},
		{Src: "ns/c", Dst: Addr("10.0.0.2"), Port: 53, Protocol: lab.UDP},
		{Src: "ns/c", Dst: Addr("fd00::2"), Port: 53, Protocol: lab.UDP},
		{Src: "ns/a", Dst: Addr("10.0.0.2"), Port: 90, Protocol: lab.SCTP},
		{Src: "ns/a", Dst: Addr("fd00::2"), Port: 90, Protocol: lab.SCTP},
	}
	results := l.Probe(ctx, probes)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
	var raw [][]byte
	seen := map[int]bool{}
	for len(seen) < len(probes) {
		msgs, err := c.Receive()
		if err != nil {
			break
		}
		for _, m := range msgs {
			if m.Header.Type != verdictlog.MsgTypePacket {
				continue
			}
			raw = append(raw, m.Data)
			msg, err := verdictlog.DecodeMessage(m.Data)
			require.NoError(t, err)
			assert.Equal(t, uint16(group), msg.Group)
			_, err = verdictlog.ParsePrefix(msg.Prefix)
			assert.NoError(t, err)
			p, err := verdictlog.DecodePacket(msg.Payload)
			require.NoError(t, err)
			for i, r := range results {
				if p.Src == r.Source.Addr() && p.SrcPort == r.Source.Port() && p.Dst == r.Probe.Dst && p.DstPort == r.Probe.Port &&
					verdictlog.ProtocolName(p.Proto) == string(r.Probe.Protocol) {
					seen[i] = true
				}
			}
		}
	}
	for i := range probes {
		assert.True(t, seen[i], "probe %+v: no message decodes to its packet", probes[i])
	}
	if os.Getenv("PALISADE_WRITE_SEEDS") == "1" {
		dir := filepath.Join("testdata", "fuzz", "FuzzDecodeMessage")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i, b := range raw {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("captured-%02d", i)), []byte(body), 0o644))
		}
	}
}
