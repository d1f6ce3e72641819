package blockvalidator

import (
	"container/list"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
)

// orphan is a block whose parent is not in the block index yet.
type orphan struct {
	hash   chainhash.Hash
	parent chainhash.Hash
	block  *btcutil.Block
	raw    []byte
	// stored says the block store holds raw already.
	stored bool
}

// orphanPool holds at most max orphans, indexed by hash and by parent
// hash; when full, the oldest orphan is evicted. It is not safe for
// concurrent use (the service's processing mutex guards it).
type orphanPool struct {
	max      int
	order    *list.List // of *orphan, oldest first
	byHash   map[chainhash.Hash]*list.Element
	byParent map[chainhash.Hash][]*list.Element
}

func newOrphanPool(maxOrphans int) *orphanPool {
	return &orphanPool{
		max:      max(maxOrphans, 1),
		order:    list.New(),
		byHash:   make(map[chainhash.Hash]*list.Element),
		byParent: make(map[chainhash.Hash][]*list.Element),
	}
}

// len is the number of orphans held.
func (p *orphanPool) len() int { return p.order.Len() }

// has reports whether the orphan with hash is held.
func (p *orphanPool) has(hash chainhash.Hash) bool {
	_, ok := p.byHash[hash]
	return ok
}

// add holds o, evicting the oldest orphans to stay within the bound. It
// returns the evicted hashes; adding a held orphan again does nothing.
func (p *orphanPool) add(o *orphan) []chainhash.Hash {
	if p.has(o.hash) {
		return nil
	}
	var evicted []chainhash.Hash
	for p.order.Len() >= p.max {
		oldest := p.order.Front().Value.(*orphan)
		p.remove(oldest.hash)
		evicted = append(evicted, oldest.hash)
	}
	el := p.order.PushBack(o)
	p.byHash[o.hash] = el
	p.byParent[o.parent] = append(p.byParent[o.parent], el)
	return evicted
}

// remove drops the orphan with hash, if held.
func (p *orphanPool) remove(hash chainhash.Hash) {
	el, ok := p.byHash[hash]
	if !ok {
		return
	}
	o := el.Value.(*orphan)
	delete(p.byHash, hash)
	p.order.Remove(el)
	siblings := p.byParent[o.parent]
	for i, s := range siblings {
		if s == el {
			siblings = append(siblings[:i], siblings[i+1:]...)
			break
		}
	}
	if len(siblings) == 0 {
		delete(p.byParent, o.parent)
	} else {
		p.byParent[o.parent] = siblings
	}
}

// takeChildren removes and returns the orphans whose parent is parent,
// oldest first.
func (p *orphanPool) takeChildren(parent chainhash.Hash) []*orphan {
	els := p.byParent[parent]
	if len(els) == 0 {
		return nil
	}
	out := make([]*orphan, 0, len(els))
	for _, el := range els {
		out = append(out, el.Value.(*orphan))
	}
	for _, o := range out {
		p.remove(o.hash)
	}
	return out
}
