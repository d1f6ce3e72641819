package blockvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
)

func h(b byte) chainhash.Hash { return chainhash.Hash{b} }

func TestOrphanPoolChildrenAndEviction(t *testing.T) {
	p := newOrphanPool(3)
	p.add(&orphan{hash: h(1), parent: h(100)})
	p.add(&orphan{hash: h(2), parent: h(100)})
	p.add(&orphan{hash: h(3), parent: h(101)})
	if p.len() != 3 {
		t.Fatalf("len = %d, want 3", p.len())
	}
	if ev := p.add(&orphan{hash: h(2), parent: h(100)}); len(ev) != 0 || p.len() != 3 {
		t.Fatalf("re-adding a held orphan evicted %v, len %d", ev, p.len())
	}
	// Full: adding a fourth evicts the oldest (1).
	ev := p.add(&orphan{hash: h(4), parent: h(102)})
	if len(ev) != 1 || ev[0] != h(1) {
		t.Fatalf("evicted %v, want [h(1)]", ev)
	}
	if p.has(h(1)) || !p.has(h(2)) || !p.has(h(4)) {
		t.Fatalf("wrong members after eviction")
	}
	kids := p.takeChildren(h(100))
	if len(kids) != 1 || kids[0].hash != h(2) {
		t.Fatalf("children of 100 = %v, want only h(2)", kids)
	}
	if p.has(h(2)) || p.len() != 2 {
		t.Fatalf("taken child still held (len %d)", p.len())
	}
	if kids := p.takeChildren(h(100)); kids != nil {
		t.Fatalf("children taken twice: %v", kids)
	}
	// Order of siblings is oldest first.
	p.add(&orphan{hash: h(5), parent: h(101)})
	kids = p.takeChildren(h(101))
	if len(kids) != 2 || kids[0].hash != h(3) || kids[1].hash != h(5) {
		t.Fatalf("children of 101 = %v, want h(3), h(5)", kids)
	}
	if p.len() != 1 || !p.has(h(4)) {
		t.Fatalf("pool should hold only h(4), len %d", p.len())
	}
	p.remove(h(4))
	if p.len() != 0 || len(p.byParent) != 0 || len(p.byHash) != 0 {
		t.Fatalf("indexes not empty after removing everything: %d %d %d", p.len(), len(p.byParent), len(p.byHash))
	}
}

func TestOrphanPoolEvictionKeepsParentIndex(t *testing.T) {
	p := newOrphanPool(2)
	for i := byte(1); i <= 10; i++ {
		p.add(&orphan{hash: h(i), parent: h(200)})
	}
	if p.len() != 2 {
		t.Fatalf("len = %d, want 2", p.len())
	}
	kids := p.takeChildren(h(200))
	if len(kids) != 2 || kids[0].hash != h(9) || kids[1].hash != h(10) {
		t.Fatalf("children = %v, want the two newest", kids)
	}
}
