package utxostore

import (
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

// TestCoinCacheIsExact drives a store with a coin cache small enough to
// evict (1 MiB, ~10k coins, blocks of 3,000) and one without through the
// same connects, lookups, disconnects and reconnects: every lookup answer,
// tip and set hash must agree, and the cache must have served most spends.
func TestCoinCacheIsExact(t *testing.T) {
	genesis := *regtest(t).Params.GenesisHash
	open := func(mb int) *store {
		st, err := openStore(storeOptions{dir: t.TempDir(), cacheMB: 16, memTableMB: 64, coinCacheMB: mb,
			genesis: genesis}, discardLog())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.close() })
		return st
	}
	cached, plain := open(1), open(0)
	blocks := perfChain(genesis, 6, 3000)
	rng := rand.New(rand.NewPCG(1, 2))
	var ops []wire.OutPoint
	for _, b := range blocks {
		for _, tx := range b.Transactions {
			for i := range tx.TxOut {
				ops = append(ops, wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)})
			}
		}
	}
	check := func(what string) {
		t.Helper()
		sample := make([]wire.OutPoint, 2000)
		for i := range sample {
			sample[i] = ops[rng.IntN(len(ops))]
		}
		a, at, err := cached.lookupMany(sample)
		if err != nil {
			t.Fatal(err)
		}
		b, bt, err := plain.lookupMany(sample)
		if err != nil {
			t.Fatal(err)
		}
		if at != bt {
			t.Fatalf("%s: tips differ %+v %+v", what, at, bt)
		}
		for i := range a {
			if !sameLookup(a[i], b[i]) {
				t.Fatalf("%s: %s answered %+v with the cache, %+v without", what, sample[i], a[i], b[i])
			}
		}
		sameStoreSet(t, what, cached, plain)
	}
	hits, spends := 0, 0
	connect := func(h int) {
		t.Helper()
		// As blockvalidator does: look the inputs up, then connect.
		var ins []wire.OutPoint
		for _, tx := range blocks[h-1].Transactions[1:] {
			for _, in := range tx.TxIn {
				ins = append(ins, in.PreviousOutPoint)
			}
		}
		if _, _, err := cached.lookupMany(ins); err != nil {
			t.Fatal(err)
		}
		r, err := cached.connect(blockchanges.Of(blocks[h-1]), int32(h))
		if err != nil {
			t.Fatalf("cached connect %d: %v", h, err)
		}
		hits += r.cacheHits
		spends += r.spent
		if _, err := plain.connect(blockchanges.Of(blocks[h-1]), int32(h)); err != nil {
			t.Fatalf("plain connect %d: %v", h, err)
		}
	}
	for h := 1; h <= 8; h++ {
		connect(h)
		check("connect")
	}
	for h := 8; h >= 5; h-- {
		for _, st := range []*store{cached, plain} {
			if _, err := st.disconnect(blocks[h-1]); err != nil {
				t.Fatalf("disconnect %d: %v", h, err)
			}
		}
		check("disconnect")
	}
	for h := 5; h <= 12; h++ {
		connect(h)
		check("reconnect")
	}
	if hits < spends/2 {
		t.Fatalf("the cache served %d of %d spends", hits, spends)
	}
	// Blocks whose transactions spend outputs of the same block, undone
	// and redone.
	cached, plain = open(1), open(0)
	blocks = chainSpec(genesis, 1, 6, 50, 0)
	ops = ops[:0]
	for _, b := range blocks {
		for _, tx := range b.Transactions {
			for i := range tx.TxOut {
				ops = append(ops, wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)})
			}
		}
	}
	for h := 1; h <= 6; h++ {
		connect(h)
		check("chained connect")
	}
	for h := 6; h >= 3; h-- {
		for _, st := range []*store{cached, plain} {
			if _, err := st.disconnect(blocks[h-1]); err != nil {
				t.Fatalf("disconnect %d: %v", h, err)
			}
		}
		check("chained disconnect")
	}
	for h := 3; h <= 6; h++ {
		connect(h)
		check("chained reconnect")
	}
	if cached.cache.len() == 0 || plain.cache.len() != 0 {
		t.Fatalf("cache sizes %d / %d", cached.cache.len(), plain.cache.len())
	}
	t.Logf("cache served %d of %d spends, holds %d coins", hits, spends, cached.cache.len())
}
