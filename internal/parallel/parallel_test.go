package parallel

import (
	"runtime"
	"sync"
	"testing"
)

// TestRanges checks that every item is handed out exactly once, in no
// more runs than the cores and n/grain allow, and that a range too small
// to split runs in one call.
func TestRanges(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, c := range []struct{ n, grain, wantRuns int }{
		{0, 10, 0}, {1, 10, 1}, {19, 10, 1}, {20, 10, 2}, {1000, 10, 4}, {1000, 0, 4}, {7, 1, 4}, {31, 10, 3},
	} {
		var mu sync.Mutex
		seen := make([]int, c.n)
		runs := 0
		Ranges(c.n, c.grain, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			runs++
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		if runs != c.wantRuns {
			t.Errorf("n %d grain %d: %d runs, want %d", c.n, c.grain, runs, c.wantRuns)
		}
		for i, k := range seen {
			if k != 1 {
				t.Fatalf("n %d grain %d: item %d handed out %d times", c.n, c.grain, i, k)
			}
		}
	}
}
