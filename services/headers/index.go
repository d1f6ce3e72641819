package headers

import (
	"bytes"
	"math/big"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
)

const (
	statusHeaderValid = headersv1.BlockStatus_BLOCK_STATUS_HEADER_VALID
	statusHaveData    = headersv1.BlockStatus_BLOCK_STATUS_HAVE_DATA
	statusValid       = headersv1.BlockStatus_BLOCK_STATUS_VALID
	statusInvalid     = headersv1.BlockStatus_BLOCK_STATUS_INVALID
)

// node is one block index entry. It implements blockchain.HeaderCtx.
type node struct {
	hash     chainhash.Hash
	header   wire.BlockHeader
	raw      []byte
	parent   *node
	children []*node
	height   int32
	work     *big.Int // cumulative work up to and including this block
	status   headersv1.BlockStatus
	reason   string
	seq      uint64 // order first seen; breaks ties in work
	// dataSeq is the order in which the block's data became stored (0
	// while it has none). Among chains of equal work the active chain
	// moves only to one whose data arrived first, as Core's nSequenceId
	// decides; it is kept in memory only (after a restart the active chain
	// is numbered first, then the other stored blocks in load order, so a
	// restart never moves the tip to an equal-work branch).
	dataSeq uint64
	mtp     int64
}

// newNode builds the entry for header on top of parent (nil for genesis).
func newNode(header wire.BlockHeader, raw []byte, parent *node, status headersv1.BlockStatus, seq uint64) *node {
	n := &node{
		hash:   header.BlockHash(),
		header: header,
		raw:    raw,
		parent: parent,
		status: status,
		seq:    seq,
	}
	n.work = blockchain.CalcWork(header.Bits)
	if parent != nil {
		n.height = parent.height + 1
		n.work.Add(n.work, parent.work)
	}
	n.mtp = blockchain.CalcPastMedianTime(n).Unix()
	return n
}

// Height returns the block's height.
func (n *node) Height() int32 { return n.height }

// Bits returns the header's compact target.
func (n *node) Bits() uint32 { return n.header.Bits }

// Timestamp returns the header's time in Unix seconds.
func (n *node) Timestamp() int64 { return n.header.Timestamp.Unix() }

// Parent returns the parent entry, or an untyped nil for genesis (btcd
// compares the interface with nil).
func (n *node) Parent() blockchain.HeaderCtx {
	if n.parent == nil {
		return nil
	}
	return n.parent
}

// RelativeAncestorCtx returns the ancestor distance blocks back, or nil.
func (n *node) RelativeAncestorCtx(distance int32) blockchain.HeaderCtx {
	a := n.ancestor(n.height - distance)
	if a == nil {
		return nil
	}
	return a
}

// ancestor walks back to height h.
func (n *node) ancestor(h int32) *node {
	if h < 0 || h > n.height {
		return nil
	}
	for n != nil && n.height > h {
		n = n.parent
	}
	return n
}

// better reports whether a beats b as the best chain: more work, or equal
// work and seen first.
func better(a, b *node) bool {
	if c := a.work.Cmp(b.work); c != 0 {
		return c > 0
	}
	return a.seq < b.seq
}

// connectable reports whether a block's data is stored and not invalid.
func connectable(n *node) bool { return n.status == statusHaveData || n.status == statusValid }

// betterCandidate reports whether the active chain should move from b to
// a: a has more work, or equal work and its data arrived first. The second
// part sends the chain back to the first-seen tip after a reorg onto an
// equal-work branch failed halfway (Core's CBlockIndexWorkComparator).
func betterCandidate(a, b *node) bool {
	if c := a.work.Cmp(b.work); c != 0 {
		return c > 0
	}
	return a.dataSeq != 0 && b.dataSeq != 0 && a.dataSeq < b.dataSeq
}

// index is the in-memory block index. It implements blockchain.ChainCtx.
// All access happens under Service.mu.
type index struct {
	params    *chaincfg.Params
	nodes     map[chainhash.Hash]*node
	leaves    map[*node]struct{}
	active    []*node // active chain by height
	bestChain []*node // best header chain by height
	best      *node
	nextSeq   uint64
	// nextDataSeq numbers blocks as their data becomes stored.
	nextDataSeq uint64
}

func newIndex(params *chaincfg.Params) *index {
	return &index{
		params: params,
		nodes:  make(map[chainhash.Hash]*node),
		leaves: make(map[*node]struct{}),
	}
}

// add links a new node into the index (its parent must be there already)
// and reports whether it became the best header.
func (x *index) add(n *node) bool {
	x.nodes[n.hash] = n
	if n.seq >= x.nextSeq {
		x.nextSeq = n.seq + 1
	}
	if n.parent != nil {
		n.parent.children = append(n.parent.children, n)
		delete(x.leaves, n.parent)
	}
	x.leaves[n] = struct{}{}
	if n.status != statusInvalid && (x.best == nil || better(n, x.best)) {
		x.setBest(n)
		return true
	}
	return false
}

// noteData gives n its data sequence number once its data is stored.
func (x *index) noteData(n *node) {
	if n.dataSeq == 0 && connectable(n) {
		x.nextDataSeq++
		n.dataSeq = x.nextDataSeq
	}
}

// tip is the active chain's tip.
func (x *index) tip() *node { return x.active[len(x.active)-1] }

func (x *index) onActive(n *node) bool {
	return n.height < int32(len(x.active)) && x.active[n.height] == n
}

func (x *index) onBest(n *node) bool {
	return n.height < int32(len(x.bestChain)) && x.bestChain[n.height] == n
}

// setChain returns chain changed so that it ends at n, reusing the common
// prefix.
func setChain(chain []*node, n *node) []*node {
	var path []*node
	m := n
	for m != nil && !(m.height < int32(len(chain)) && chain[m.height] == m) {
		path = append(path, m)
		m = m.parent
	}
	if m == nil {
		chain = chain[:0]
	} else {
		chain = chain[:m.height+1]
	}
	for i := len(path) - 1; i >= 0; i-- {
		chain = append(chain, path[i])
	}
	return chain
}

func (x *index) setBest(n *node) {
	x.best = n
	x.bestChain = setChain(x.bestChain, n)
}

// recomputeBest picks the best header again after entries were invalidated
// and reports whether it changed.
func (x *index) recomputeBest() bool {
	var best *node
	for _, n := range x.nodes {
		if n.status != statusInvalid && (best == nil || better(n, best)) {
			best = n
		}
	}
	if best == x.best {
		return false
	}
	x.setBest(best)
	return true
}

// branch describes the way from the active chain to a block: fork is the
// last block shared with the active chain, and at(h) returns the block's
// ancestor at heights fork.height < h <= block height.
type branch struct {
	x    *index
	fork *node
	join *node   // first block found on the active or best chain
	side []*node // blocks above join, newest first
}

// branchTo finds how n hangs off the active chain, walking back only until
// it meets the active or best header chain (both are indexed by height).
func (x *index) branchTo(n *node) branch {
	b := branch{x: x}
	m := n
	for !x.onActive(m) && !x.onBest(m) {
		b.side = append(b.side, m)
		m = m.parent
	}
	b.join = m
	if x.onActive(m) {
		b.fork = m
		return b
	}
	h := min(m.height, int32(len(x.active))-1)
	for x.bestChain[h] != x.active[h] {
		h--
	}
	b.fork = x.active[h]
	return b
}

// at returns the branch's block at height h (fork.height < h <= top).
func (b branch) at(h int32) *node {
	if h > b.join.height {
		return b.side[len(b.side)-1-int(h-b.join.height-1)]
	}
	if b.x.onActive(b.join) {
		return b.x.active[h]
	}
	return b.x.bestChain[h]
}

// ancestorAt returns n's ancestor at height h using the chain indexes.
func (x *index) ancestorAt(n *node, h int32) *node {
	if h < 0 || h > n.height {
		return nil
	}
	for n.height > h {
		if x.onActive(n) {
			return x.active[h]
		}
		if x.onBest(n) {
			return x.bestChain[h]
		}
		n = n.parent
	}
	return n
}

// locator builds the exponential block locator ending at n.
func (x *index) locator(n *node) []*node {
	var out []*node
	step := int32(1)
	for h := n.height; ; {
		out = append(out, x.ancestorAt(n, h))
		if h == 0 {
			break
		}
		if len(out) >= 10 {
			step *= 2
		}
		h = max(h-step, 0)
	}
	return out
}

// descendants returns every block built on n, depth first.
func descendants(n *node) []*node {
	var out []*node
	stack := append([]*node(nil), n.children...)
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, m)
		stack = append(stack, m.children...)
	}
	return out
}

// sortTips orders chain tips: active first, then higher first, then by hash.
func tipLess(x *index, a, b *node) int {
	aa, ba := a == x.tip(), b == x.tip()
	switch {
	case aa && !ba:
		return -1
	case ba && !aa:
		return 1
	case a.height != b.height:
		if a.height > b.height {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.hash[:], b.hash[:])
}

// ChainParams returns the network's parameters.
func (x *index) ChainParams() *chaincfg.Params { return x.params }

// BlocksPerRetarget is the difficulty adjustment interval.
func (x *index) BlocksPerRetarget() int32 {
	return int32(x.params.TargetTimespan / x.params.TargetTimePerBlock)
}

// MinRetargetTimespan is the smallest timespan a retarget uses, in seconds.
func (x *index) MinRetargetTimespan() int64 {
	return int64(x.params.TargetTimespan.Seconds()) / x.params.RetargetAdjustmentFactor
}

// MaxRetargetTimespan is the largest timespan a retarget uses, in seconds.
func (x *index) MaxRetargetTimespan() int64 {
	return int64(x.params.TargetTimespan.Seconds()) * x.params.RetargetAdjustmentFactor
}

// VerifyCheckpoint reports whether hash matches the checkpoint at height,
// if there is one.
func (x *index) VerifyCheckpoint(height int32, hash *chainhash.Hash) bool {
	for _, cp := range x.params.Checkpoints {
		if cp.Height == height {
			return cp.Hash.IsEqual(hash)
		}
	}
	return true
}

// FindPreviousCheckpoint returns the newest checkpoint already in the index.
func (x *index) FindPreviousCheckpoint() (blockchain.HeaderCtx, error) {
	for i := len(x.params.Checkpoints) - 1; i >= 0; i-- {
		if n, ok := x.nodes[*x.params.Checkpoints[i].Hash]; ok {
			return n, nil
		}
	}
	return nil, nil
}
