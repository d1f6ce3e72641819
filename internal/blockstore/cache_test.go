package blockstore

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// TestCache checks the byte bound, oldest-first eviction, that a block is
// kept once, and that a nil cache keeps nothing.
func TestCache(t *testing.T) {
	c := NewCache(250)
	h := func(i byte) chainhash.Hash { return chainhash.Hash{i} }
	c.put(h(1), make([]byte, 100))
	c.put(h(2), make([]byte, 100))
	c.put(h(2), make([]byte, 100)) // again: no double count
	if _, ok := c.get(h(1)); !ok {
		t.Fatal("block 1 missing")
	}
	c.put(h(3), make([]byte, 100)) // 300 > 250: block 1 goes
	if _, ok := c.get(h(1)); ok {
		t.Fatal("oldest block not evicted")
	}
	for _, i := range []byte{2, 3} {
		if b, ok := c.get(h(i)); !ok || len(b) != 100 {
			t.Fatalf("block %d: %d bytes, %v", i, len(b), ok)
		}
	}
	c.put(h(4), make([]byte, 300)) // larger than the cache: not kept
	if _, ok := c.get(h(4)); ok || c.size != 200 {
		t.Fatalf("oversized block kept, size %d", c.size)
	}
	var none *Cache
	none.put(h(5), []byte{1})
	if _, ok := none.get(h(5)); ok {
		t.Fatal("nil cache returned a block")
	}
}
