package scriptpool

import (
	"testing"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"
)

func jobWith(inputs int) *txvalidatorv1.TxJob {
	return &txvalidatorv1.TxJob{Tx: []byte{byte(inputs)}, Prevouts: make([]*txvalidatorv1.Prevout, inputs)}
}

// TestPlanSplitsLargeTransaction checks that one 3000-input transaction
// is spread over many requests as contiguous input ranges, at most one
// range of it per request.
func TestPlanSplitsLargeTransaction(t *testing.T) {
	c := &Client{parts: defaultParts, minChunk: defaultMinChunk, minSplit: defaultMinSplit}
	chunks := c.plan([]*txvalidatorv1.TxJob{jobWith(3000)})
	if len(chunks) < 8 {
		t.Fatalf("%d chunks for a 3000-input transaction, want it spread", len(chunks))
	}
	next := uint32(0)
	for k, ch := range chunks {
		if len(ch.jobs) != 1 || !ch.pieces[0].split {
			t.Fatalf("chunk %d holds %d jobs (split %v)", k, len(ch.jobs), ch.pieces[0].split)
		}
		j := ch.jobs[0]
		if j.GetInputStart() != next || j.GetInputEnd() <= j.GetInputStart() {
			t.Fatalf("chunk %d range [%d,%d), want start %d", k, j.GetInputStart(), j.GetInputEnd(), next)
		}
		if n := j.GetInputEnd() - j.GetInputStart(); n < defaultMinSplit {
			t.Errorf("chunk %d range of %d inputs", k, n)
		}
		next = j.GetInputEnd()
	}
	if next != 3000 {
		t.Fatalf("ranges end at %d, want 3000", next)
	}
}

// TestPlanBalancesByInputs checks that chunks carry about the same number
// of inputs, whatever the number of jobs, and keep every job once.
func TestPlanBalancesByInputs(t *testing.T) {
	c := &Client{parts: 8, minChunk: 16, minSplit: 64}
	var jobs []*txvalidatorv1.TxJob
	for i := range 200 {
		jobs = append(jobs, jobWith(1+i%5))
	}
	jobs = append(jobs, jobWith(400)) // one big one in the middle of small ones
	for range 50 {
		jobs = append(jobs, &txvalidatorv1.TxJob{SkipScripts: true, Prevouts: make([]*txvalidatorv1.Prevout, 3)})
	}
	chunks := c.plan(jobs)
	seen := make(map[int]int)
	most, total := 0, 0
	for _, ch := range chunks {
		w := 0
		for n, p := range ch.pieces {
			if !p.split {
				seen[p.job]++
			}
			w += cost(ch.jobs[n])
		}
		most = max(most, w)
		total += w
	}
	for i := range jobs {
		if i == 200 {
			continue // split
		}
		if seen[i] != 1 {
			t.Fatalf("job %d placed %d times", i, seen[i])
		}
	}
	if avg := total / len(chunks); most > 3*avg {
		t.Errorf("largest chunk %d inputs, average %d", most, avg)
	}
}

// TestMerge checks that a split transaction's result is the one the whole
// transaction would have had.
func TestMerge(t *testing.T) {
	ok := func(fee int64) *txvalidatorv1.TxResult {
		return &txvalidatorv1.TxResult{Valid: true, Fee: fee, FailedInput: -1}
	}
	bad := func(input int32, rule string) *txvalidatorv1.TxResult {
		return &txvalidatorv1.TxResult{FailedInput: input, Rejection: &commonv1.Rejection{Rule: rule}}
	}
	if r := merge([]*txvalidatorv1.TxResult{ok(5), ok(5)}); !r.GetValid() || r.GetFee() != 5 {
		t.Errorf("all valid: %v", r)
	}
	if r := merge([]*txvalidatorv1.TxResult{ok(5), bad(700, "b"), bad(300, "a")}); r.GetFailedInput() != 300 {
		t.Errorf("lowest failing input: %v", r)
	}
	if r := merge([]*txvalidatorv1.TxResult{bad(3, "script"), bad(-1, "bad-txns-in-belowout")}); r.GetFailedInput() != -1 {
		t.Errorf("non-script failure first: %v", r)
	}
}
