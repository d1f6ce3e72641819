// Package parallel spreads a range of independent items over the cores.
package parallel

import (
	"runtime"
	"sync"
)

// Ranges calls f on contiguous runs [lo, hi) of equal length (the last
// may be shorter) that together cover [0, n) once each: as many runs as
// GOMAXPROCS allows, but no more than n/grain, so that a run is worth a
// goroutine. The caller's goroutine takes the first run; Ranges returns
// when every call has returned. Runs may execute at once: f must only
// touch its own items.
func Ranges(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), n/max(grain, 1)))
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := per; lo < n; lo += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, min(lo+per, n))
		}()
	}
	f(0, min(per, n))
	wg.Wait()
}
