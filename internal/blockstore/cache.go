package blockstore

import (
	"slices"
	"sync"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Cache keeps the blocks most recently stored or read through the Stores
// of one process (`btcmesh node` shares one between its services), so that
// a block p2p just stored is handed to the blockvalidator from memory
// instead of being read back from the bucket. It holds copies of stored
// blocks only, bounded in bytes, oldest out first; it is safe for
// concurrent use. A nil *Cache caches nothing.
type Cache struct {
	mu     sync.Mutex
	max    int
	size   int
	blocks map[chainhash.Hash][]byte
	order  []chainhash.Hash // insertion order, for eviction
}

// ProcessCacheBytes bounds the blocks the services of one process share
// in memory (`btcmesh node`): a download window's worth of small blocks,
// a few dozen full ones.
const ProcessCacheBytes = 128 << 20

// NewCache returns a cache of at most maxBytes of blocks.
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, blocks: make(map[chainhash.Hash][]byte)}
}

func (c *Cache) get(hash chainhash.Hash) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	return b, ok
}

// del forgets the block under hash.
func (c *Cache) del(hash chainhash.Hash) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.blocks[hash]; ok {
		c.size -= len(b)
		delete(c.blocks, hash)
		c.order = slices.DeleteFunc(c.order, func(h chainhash.Hash) bool { return h == hash })
	}
}

// put keeps block (which the cache owns from now on) under hash.
func (c *Cache) put(hash chainhash.Hash, block []byte) {
	if c == nil || len(block) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.blocks[hash]; ok {
		return
	}
	for c.size+len(block) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.blocks[old])
		delete(c.blocks, old)
	}
	c.blocks[hash] = block
	c.order = append(c.order, hash)
	c.size += len(block)
}
