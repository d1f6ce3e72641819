package utxostore

import "github.com/btcsuite/btcd/wire/v2"

// coinCacheEntryOverhead approximates what one cached coin costs besides
// its encoded value: the outpoint key, the slice header and the map's
// own bookkeeping.
const coinCacheEntryOverhead = 36 + 24 + 40

// coinCache is a bounded in-memory copy of part of the set: coins the
// store knows to be unspent at its current tip (store.cur). It is
// write-through and exact, never a guess: an entry exists only while the
// same coin is unspent at the tip (in badger or pending), because every
// change that spends or removes a coin removes it here, and every coin
// added here was either just created or restored, or read from a
// snapshot at the tip the cache reflects (see store.lookupRaw). So a hit
// is the answer, even before the pending changes are asked; a miss says
// nothing.
//
// Most inputs of a new block spend recent outputs, and blockvalidator
// looks every input up (GetUtxos) just before ConnectBlock, so the
// connect finds its coins here instead of reading them back from badger.
//
// Eviction is by generations: new entries go to young; when young holds
// half the budget it becomes old and the previous old is dropped. A hit
// in old is not promoted (coins are read about twice, then spent).
//
// coinCache is not safe for concurrent use; store.cacheMu guards it.
type coinCache struct {
	budget     int // bytes for both generations; 0 disables the cache
	young, old map[wire.OutPoint][]byte
	youngBytes int
	oldBytes   int
}

func newCoinCache(budget int) *coinCache {
	c := &coinCache{budget: budget}
	c.reset()
	return c
}

// reset drops every entry.
func (c *coinCache) reset() {
	c.young = make(map[wire.OutPoint][]byte)
	c.old = nil
	c.youngBytes, c.oldBytes = 0, 0
}

func entryCost(v []byte) int { return len(v) + coinCacheEntryOverhead }

// get returns the encoded coin at op. The slice must not be modified.
func (c *coinCache) get(op wire.OutPoint) ([]byte, bool) {
	if v, ok := c.young[op]; ok {
		return v, true
	}
	v, ok := c.old[op]
	return v, ok
}

// put records that op holds the encoded coin v (which the cache keeps: it
// must not be modified afterwards).
func (c *coinCache) put(op wire.OutPoint, v []byte) {
	if c.budget <= 0 {
		return
	}
	if old, ok := c.old[op]; ok {
		c.oldBytes -= entryCost(old)
		delete(c.old, op)
	}
	if prev, ok := c.young[op]; ok {
		c.youngBytes -= entryCost(prev)
	}
	c.young[op] = v
	c.youngBytes += entryCost(v)
	if c.youngBytes >= c.budget/2 {
		c.old, c.oldBytes = c.young, c.youngBytes
		c.young, c.youngBytes = make(map[wire.OutPoint][]byte, len(c.old)), 0
	}
}

// del forgets op (it was spent or removed). An outpoint is in at most
// one generation (put moves it out of old), so a hit in young ends it.
func (c *coinCache) del(op wire.OutPoint) {
	if v, ok := c.young[op]; ok {
		c.youngBytes -= entryCost(v)
		delete(c.young, op)
		return
	}
	if v, ok := c.old[op]; ok {
		c.oldBytes -= entryCost(v)
		delete(c.old, op)
	}
}

// len is the number of cached coins.
func (c *coinCache) len() int { return len(c.young) + len(c.old) }
