package miner

import (
	"bytes"
	"container/heap"
	"math/bits"
	"sort"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Block limits (BIP141) and what a template keeps back for the coinbase.
const (
	maxBlockWeight     = 4_000_000
	maxBlockSigOpsCost = 80_000
	coinbaseWeightRes  = 4_000
	coinbaseSigOpsRes  = 400
	// maxConsecutiveFailures ends selection once the block is nearly full
	// and this many packages in a row did not fit (as Core does).
	maxConsecutiveFailures = 1000
)

// candidate is a mempool transaction as template selection sees it.
type candidate struct {
	txid   chainhash.Hash
	fee    int64
	weight int64
	sigops int64
	// parents are the in-mempool parents (all of them are candidates).
	parents []chainhash.Hash
}

// pkgScore is a package's fee and size for comparisons.
type pkgScore struct {
	fee   int64
	vsize int64
}

// better reports whether a has a strictly higher fee rate than b, exactly
// (fee_a/vsize_a > fee_b/vsize_b without division or overflow).
func (a pkgScore) better(b pkgScore) bool {
	ah, al := bits.Mul64(uint64(max(a.fee, 0)), uint64(max(b.vsize, 1)))
	bh, bl := bits.Mul64(uint64(max(b.fee, 0)), uint64(max(a.vsize, 1)))
	if ah != bh {
		return ah > bh
	}
	return al > bl
}

type heapItem struct {
	idx     int
	version int
	score   pkgScore
	txid    chainhash.Hash
}

type scoreHeap []heapItem

func (h scoreHeap) Len() int { return len(h) }
func (h scoreHeap) Less(i, j int) bool {
	if h[i].score.better(h[j].score) {
		return true
	}
	if h[j].score.better(h[i].score) {
		return false
	}
	return bytes.Compare(h[i].txid[:], h[j].txid[:]) < 0
}
func (h scoreHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *scoreHeap) Push(x any)   { *h = append(*h, x.(heapItem)) }
func (h *scoreHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// selectTransactions picks candidates for a block by ancestor-package fee
// rate, as Bitcoin Core's BlockAssembler does: a transaction is scored with
// its not-yet-selected in-mempool ancestors, the best package goes in whole
// (parents first), and the scores of the descendants of what went in are
// updated. Packages that would break maxWeight or maxSigOps are skipped.
// It returns indexes into cands in block order.
func selectTransactions(cands []candidate, maxWeight, maxSigOps int64) []int {
	n := len(cands)
	index := make(map[chainhash.Hash]int, n)
	for i, c := range cands {
		index[c.txid] = i
	}
	children := make([][]int, n)
	parents := make([][]int, n)
	for i, c := range cands {
		for _, p := range c.parents {
			if j, ok := index[p]; ok {
				parents[i] = append(parents[i], j)
				children[j] = append(children[j], i)
			}
		}
	}

	// Ancestor sets (including the transaction itself), memoised.
	ancestors := make([]map[int]struct{}, n)
	var ancOf func(i int) map[int]struct{}
	ancOf = func(i int) map[int]struct{} {
		if ancestors[i] != nil {
			return ancestors[i]
		}
		set := map[int]struct{}{i: {}}
		ancestors[i] = set // guards against (invalid) cycles
		for _, p := range parents[i] {
			for a := range ancOf(p) {
				set[a] = struct{}{}
			}
		}
		return set
	}

	fee := make([]int64, n)
	weight := make([]int64, n)
	sigops := make([]int64, n)
	version := make([]int, n)
	h := make(scoreHeap, 0, n)
	for i := range cands {
		for a := range ancOf(i) {
			fee[i] += cands[a].fee
			weight[i] += cands[a].weight
			sigops[i] += cands[a].sigops
		}
		h = append(h, heapItem{idx: i, score: pkgScore{fee[i], vsizeOf(weight[i])}, txid: cands[i].txid})
	}
	heap.Init(&h)

	included := make([]bool, n)
	failed := make([]bool, n)
	var (
		out           []int
		blockWeight   int64
		blockSigOps   int64
		failuresInRow int
	)
	for h.Len() > 0 {
		it := heap.Pop(&h).(heapItem)
		i := it.idx
		if included[i] || failed[i] || it.version != version[i] {
			continue
		}
		if blockWeight+weight[i] > maxWeight || blockSigOps+sigops[i] > maxSigOps {
			failed[i] = true
			failuresInRow++
			if failuresInRow > maxConsecutiveFailures && blockWeight > maxWeight-coinbaseWeightRes {
				break
			}
			continue
		}
		failuresInRow = 0

		// The package: ancestors not selected yet, parents first (a parent
		// has strictly fewer ancestors than its child).
		var pkg []int
		for a := range ancestors[i] {
			if !included[a] {
				pkg = append(pkg, a)
			}
		}
		sort.Slice(pkg, func(x, y int) bool {
			lx, ly := len(ancestors[pkg[x]]), len(ancestors[pkg[y]])
			if lx != ly {
				return lx < ly
			}
			return pkg[x] < pkg[y]
		})
		for _, a := range pkg {
			included[a] = true
			out = append(out, a)
			blockWeight += cands[a].weight
			blockSigOps += cands[a].sigops
		}
		// Every remaining descendant of what went in loses those ancestors
		// from its package score.
		for _, a := range pkg {
			for _, d := range descendantsOf(a, children) {
				if included[d] {
					continue
				}
				fee[d] -= cands[a].fee
				weight[d] -= cands[a].weight
				sigops[d] -= cands[a].sigops
				version[d]++
				heap.Push(&h, heapItem{idx: d, version: version[d], score: pkgScore{fee[d], vsizeOf(weight[d])}, txid: cands[d].txid})
			}
		}
	}
	return out
}

// descendantsOf lists every transitive child of i (not i itself).
func descendantsOf(i int, children [][]int) []int {
	var out []int
	seen := map[int]struct{}{i: {}}
	stack := append([]int(nil), children[i]...)
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[d]; ok {
			continue
		}
		seen[d] = struct{}{}
		out = append(out, d)
		stack = append(stack, children[d]...)
	}
	return out
}

// vsizeOf converts weight to virtual size, rounding up.
func vsizeOf(weight int64) int64 { return (weight + 3) / 4 }
