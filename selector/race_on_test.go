//go:build race

package selector

// raceEnabled reports a -race build: the randomized tests then do less work
// (the index is single-threaded; the race detector only slows them down).
const raceEnabled = true
