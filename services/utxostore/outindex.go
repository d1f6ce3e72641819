package utxostore

import (
	"hash/maphash"

	"github.com/btcsuite/btcd/wire/v2"
)

// outIndex maps the outpoints one block spends and creates to an int, as
// a Go map would, for connect's first pass: a few thousand lookups and
// inserts per block, which with 36-byte keys spread over a map's slots
// missed the cache on most of them. It is an open-addressing table of
// small slots over a list of entries, both kept from block to block. The
// hash is seeded per index, so a block cannot be made to collide.
type outIndex struct {
	seed    maphash.Seed
	slots   []int32 // 0: empty; k: entries[k-1]; its length a power of two
	entries []outEntry
	// hash is the outpoints' hash (seeded); tests replace it to collide.
	hash func(seed maphash.Seed, op wire.OutPoint) uint64
}

// outEntry is one outpoint of an outIndex, with its hash and value.
type outEntry struct {
	op wire.OutPoint
	h  uint64
	v  int
}

// minOutSlots is the fewest slots an outIndex has.
const minOutSlots = 1 << 10

func newOutIndex() *outIndex {
	return &outIndex{seed: maphash.MakeSeed(), slots: make([]int32, minOutSlots), hash: outHash}
}

// outHash hashes op with seed.
func outHash(seed maphash.Seed, op wire.OutPoint) uint64 {
	return maphash.Bytes(seed, op.Hash[:]) ^ (uint64(op.Index)+1)*0x9e3779b97f4a7c15
}

// find returns the slot holding op, or the empty slot where it would go.
func (x *outIndex) find(op wire.OutPoint, h uint64) int {
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		k := x.slots[i]
		if k == 0 {
			return int(i)
		}
		if e := &x.entries[k-1]; e.h == h && e.op == op {
			return int(i)
		}
	}
}

// get returns op's value.
func (x *outIndex) get(op wire.OutPoint) (int, bool) {
	k := x.slots[x.find(op, x.hash(x.seed, op))]
	if k == 0 {
		return 0, false
	}
	return x.entries[k-1].v, true
}

// set makes v op's value.
func (x *outIndex) set(op wire.OutPoint, v int) {
	h := x.hash(x.seed, op)
	i := x.find(op, h)
	if k := x.slots[i]; k != 0 {
		x.entries[k-1].v = v
		return
	}
	x.entries = append(x.entries, outEntry{op: op, h: h, v: v})
	x.slots[i] = int32(len(x.entries))
	if 2*len(x.entries) > len(x.slots) {
		x.grow()
	}
}

// grow doubles the slots, keeping them at most half full.
func (x *outIndex) grow() {
	x.slots = make([]int32, 2*len(x.slots))
	mask := uint64(len(x.slots) - 1)
	for k := range x.entries {
		i := x.entries[k].h & mask
		for x.slots[i] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = int32(k + 1)
	}
}

// reset empties x, keeping its slots (and their size) for the next block.
func (x *outIndex) reset() {
	clear(x.slots)
	x.entries = x.entries[:0]
}
