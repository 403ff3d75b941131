package verdictlog_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/palisade-net/palisade/backend/verdictlog"
)

// BenchmarkDeniedFlood sends denied UDP packets (ns/c → ns/b:53, the Admin
// tier's Deny rule) as fast as one socket can, through each backend with
// the verdict log off and on (budget 100/s, a reader draining the group):
// ns/op is the cost of one denied packet, sender and filter, on the
// sender's CPU. The log must not slow the flood beyond its rule's cost.
func BenchmarkDeniedFlood(b *testing.B) {
	if !isRoot() {
		b.Skip("needs root: creates network namespaces and packet filters")
	}
	for _, name := range []string{"nftables", "iptables"} {
		for _, on := range []bool{false, true} {
			label := name + "/log=off"
			if on {
				label = name + "/log=deny"
			}
			b.Run(label, func(b *testing.B) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				l, ns := newLab(ctx, b)
				lg := verdictlog.Logging{Enabled: on, Group: 12}
				be, err := kernelBackends[name](int(ns), lg)
				if err != nil {
					b.Fatal(err)
				}
				cat := verdictlog.NewCatalog(nil)
				if _, err := verdictlog.Track(be, cat).Sync(ctx, logSnapshot()); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = be.Cleanup(context.Background()) })
				var rd *verdictlog.Reader
				if on {
					if rd, err = verdictlog.Open(verdictlog.Config{NetNS: int(ns), Group: lg.Group, Resolver: cat}); err != nil {
						b.Fatal(err)
					}
					rctx, stop := context.WithCancel(ctx)
					done := make(chan struct{})
					go func() { defer close(done); _ = rd.Run(rctx, func(*verdictlog.Event) {}) }()
					defer func() { stop(); <-done }()
				}
				fds, err := l.Sockets("ns/c", 1, unix.AF_INET, unix.SOCK_DGRAM, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Close(fds[0])
				dst := &unix.SockaddrInet4{Port: 53, Addr: [4]byte{10, 0, 0, 2}}
				payload := []byte("flood")
				start := time.Now()
				for b.Loop() {
					_ = unix.Sendto(fds[0], payload, 0, dst)
				}
				elapsed := time.Since(start)
				if rd != nil {
					time.Sleep(50 * time.Millisecond)
					st := rd.Stats()
					b.ReportMetric(float64(st.Received)/elapsed.Seconds(), "records/s")
				}
			})
		}
	}
}
