package utxostore

import (
	"hash/maphash"
	"math/rand"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

// TestOutIndexAgreesWithMap runs the same sets and gets on an outIndex
// and a Go map, over blocks' worth of outpoints (some repeated, some
// sharing a txid), with the real hash and with hashes that collide: all
// to one value, and to a handful.
func TestOutIndexAgreesWithMap(t *testing.T) {
	hashes := map[string]func(maphash.Seed, wire.OutPoint) uint64{
		"seeded":    outHash,
		"constant":  func(maphash.Seed, wire.OutPoint) uint64 { return 7 },
		"four ways": func(_ maphash.Seed, op wire.OutPoint) uint64 { return uint64(op.Hash[0] & 3) },
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewSource(1))
			x := newOutIndex()
			x.hash = h
			n := 3000
			if name != "seeded" {
				n = 300 // every probe walks the run of colliding slots
			}
			for block := range 3 {
				want := make(map[wire.OutPoint]int)
				pool := make([]wire.OutPoint, n)
				for i := range pool {
					if i > 0 && r.Intn(4) == 0 {
						pool[i] = wire.OutPoint{Hash: pool[i-1].Hash, Index: pool[i-1].Index + 1}
						continue
					}
					r.Read(pool[i].Hash[:])
					pool[i].Index = uint32(r.Intn(3))
				}
				for step := range 4 * n {
					op := pool[r.Intn(n)]
					if r.Intn(2) == 0 {
						want[op] = step
						x.set(op, step)
						continue
					}
					v, ok := x.get(op)
					if w, wok := want[op]; ok != wok || v != w {
						t.Fatalf("block %d step %d: get %v = %d %v, want %d %v", block, step, op, v, ok, w, wok)
					}
				}
				for op, w := range want {
					if v, ok := x.get(op); !ok || v != w {
						t.Fatalf("block %d: get %v = %d %v, want %d", block, op, v, ok, w)
					}
				}
				if len(x.entries) != len(want) {
					t.Fatalf("block %d: %d entries, want %d", block, len(x.entries), len(want))
				}
				x.reset()
				for op := range want {
					if _, ok := x.get(op); ok {
						t.Fatalf("block %d: %v still there after reset", block, op)
					}
				}
			}
		})
	}
}

// TestOutIndexSeeded checks that two indexes hash the same outpoint
// differently (a block cannot be built to collide in every store).
func TestOutIndexSeeded(t *testing.T) {
	op := wire.OutPoint{Index: 1}
	a, b := newOutIndex(), newOutIndex()
	if a.hash(a.seed, op) == b.hash(b.seed, op) {
		t.Fatal("two indexes hash an outpoint alike")
	}
}
