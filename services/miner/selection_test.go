package miner

import (
	"math/rand"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func hashN(n int) chainhash.Hash {
	var h chainhash.Hash
	h[0], h[1], h[2] = byte(n), byte(n>>8), 0xee
	return h
}

func cand(n int, fee, weight int64, parents ...int) candidate {
	c := candidate{txid: hashN(n), fee: fee, weight: weight, sigops: 4}
	for _, p := range parents {
		c.parents = append(c.parents, hashN(p))
	}
	return c
}

func txidsOf(cands []candidate, order []int) []chainhash.Hash {
	out := make([]chainhash.Hash, len(order))
	for i, idx := range order {
		out[i] = cands[idx].txid
	}
	return out
}

func TestSelectionByAncestorFeeRate(t *testing.T) {
	cands := []candidate{
		cand(1, 400, 1000),     // lone, 1.6 sat/vB
		cand(2, 100, 1000),     // poor parent, 0.4 sat/vB
		cand(3, 2000, 1000, 2), // rich child: package (2,3) is 4.2 sat/vB
		cand(4, 1000, 1000),    // lone, 4 sat/vB
		cand(5, 50, 1000, 1),   // poor child of 1
	}
	got := txidsOf(cands, selectTransactions(cands, maxBlockWeight, maxBlockSigOpsCost))
	want := []chainhash.Hash{hashN(2), hashN(3), hashN(4), hashN(1), hashN(5)}
	if len(got) != len(want) {
		t.Fatalf("selected %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("position %d: tx %d, want tx %d (order %v)", i, got[i][0], want[i][0], got)
		}
	}
}

func TestSelectionParentsFirstRandomDAG(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for round := range 50 {
		n := 2 + rng.Intn(60)
		cands := make([]candidate, n)
		for i := range n {
			var parents []int
			for j := range i {
				if rng.Intn(6) == 0 {
					parents = append(parents, j)
				}
			}
			cands[i] = cand(i, int64(rng.Intn(100000)), int64(400+rng.Intn(4000)), parents...)
		}
		// Shuffle so that input order says nothing.
		rng.Shuffle(n, func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
		maxWeight := int64(rng.Intn(60000) + 4000)
		order := selectTransactions(cands, maxWeight, maxBlockSigOpsCost)
		pos := map[chainhash.Hash]int{}
		var weight int64
		for i, idx := range order {
			if _, dup := pos[cands[idx].txid]; dup {
				t.Fatalf("round %d: tx selected twice", round)
			}
			pos[cands[idx].txid] = i
			weight += cands[idx].weight
		}
		if weight > maxWeight {
			t.Fatalf("round %d: weight %d over %d", round, weight, maxWeight)
		}
		for i, idx := range order {
			for _, p := range cands[idx].parents {
				pi, ok := pos[p]
				if !ok {
					t.Fatalf("round %d: child selected without its parent", round)
				}
				if pi >= i {
					t.Fatalf("round %d: parent at %d after child at %d", round, pi, i)
				}
			}
		}
	}
}

func TestSelectionWeightLimit(t *testing.T) {
	cands := []candidate{
		cand(1, 1_000_000, 3_000_000), // best rate, too big with the rest
		cand(2, 90_000, 1_500_000),
		cand(3, 30_000, 1_000_000),
		cand(4, 20_000, 1_000_000),
	}
	limit := int64(maxBlockWeight - coinbaseWeightRes)
	got := txidsOf(cands, selectTransactions(cands, limit, maxBlockSigOpsCost))
	// 1 goes in (3,000,000); 2 does not fit; 3 does not fit either
	// (4,000,000 > 3,996,000); nothing else fits.
	if len(got) != 1 || got[0] != hashN(1) {
		t.Fatalf("got %v, want only tx 1", got)
	}
	// Without 1, the rest fit exactly under the limit except one.
	got = txidsOf(cands[1:], selectTransactions(cands[1:], limit, maxBlockSigOpsCost))
	if len(got) != 3 {
		t.Fatalf("got %d txs, want 3 (3,500,000 weight)", len(got))
	}
	// A package that does not fit is skipped whole: the child of a huge
	// parent cannot go in alone.
	cands = []candidate{cand(1, 10, 3_999_000), cand(2, 1_000_000, 400, 1), cand(3, 1, 400)}
	got = txidsOf(cands, selectTransactions(cands, limit, maxBlockSigOpsCost))
	if len(got) != 1 || got[0] != hashN(3) {
		t.Fatalf("got %v, want only tx 3", got)
	}
}

func TestSelectionSigOpLimit(t *testing.T) {
	a := cand(1, 5000, 1000)
	a.sigops = 60_000
	b := cand(2, 4000, 1000)
	b.sigops = 30_000
	c := cand(3, 10, 1000)
	c.sigops = 10_000
	cands := []candidate{a, b, c}
	got := txidsOf(cands, selectTransactions(cands, maxBlockWeight, maxBlockSigOpsCost-coinbaseSigOpsRes))
	if len(got) != 2 || got[0] != hashN(1) || got[1] != hashN(3) {
		t.Fatalf("got %v, want txs 1 and 3", got)
	}
}

func TestPkgScoreBetterNoOverflow(t *testing.T) {
	big := pkgScore{fee: 2_100_000_000_000_000, vsize: 1_000_000}
	bigger := pkgScore{fee: 2_100_000_000_000_001, vsize: 1_000_000}
	if !bigger.better(big) || big.better(bigger) {
		t.Fatal("comparison wrong at large values")
	}
	if (pkgScore{fee: 1, vsize: 3}).better(pkgScore{fee: 2, vsize: 6}) {
		t.Fatal("equal rates compared as better")
	}
}
