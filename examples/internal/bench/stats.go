package bench

import (
	"math"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of ds,
// which it sorts in place. It is 0 for an empty input.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	return ds[min(max(rank, 1), len(ds))-1]
}

// Latencies summarises a series of durations, in microseconds.
type Latencies struct {
	// Count is the number of measurements.
	Count     int     `json:"count"`
	P50Micros float64 `json:"p50Micros"`
	P99Micros float64 `json:"p99Micros"`
	MaxMicros float64 `json:"maxMicros"`
}

func summarise(ds []time.Duration) Latencies {
	return Latencies{
		Count:     len(ds),
		P50Micros: micros(percentile(ds, 50)),
		P99Micros: micros(percentile(ds, 99)),
		MaxMicros: micros(percentile(ds, 100)),
	}
}

// micros renders d in microseconds, to 0.01 µs.
func micros(d time.Duration) float64 { return round(float64(d.Nanoseconds())/1e3, 2) }

// seconds renders d in seconds, to the microsecond.
func seconds(d time.Duration) float64 { return round(d.Seconds(), 6) }

// mib renders bytes in MiB, to 0.01 MiB.
func mib(b int64) float64 { return round(float64(b)/(1<<20), 2) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// ratio is a/b to four digits, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 4)
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// cpuTime accumulates the process's user and system CPU time between start
// and stop calls.
type cpuTime struct {
	user, sys time.Duration
	ru        unix.Rusage
}

func (c *cpuTime) start() { _ = unix.Getrusage(unix.RUSAGE_SELF, &c.ru) }

func (c *cpuTime) stop() {
	var now unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &now) != nil {
		return
	}
	c.user += time.Duration(now.Utime.Nano() - c.ru.Utime.Nano())
	c.sys += time.Duration(now.Stime.Nano() - c.ru.Stime.Nano())
}
