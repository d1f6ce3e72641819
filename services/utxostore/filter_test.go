package utxostore

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

func TestKeyFilterHasNoFalseNegatives(t *testing.T) {
	f := newKeyFilter(64 << 10) // 1024 blocks: holds about 52k keys well
	op := func(i int) wire.OutPoint {
		h := chainhash.DoubleHashH(binary.LittleEndian.AppendUint64(nil, uint64(i)))
		return wire.OutPoint{Hash: h, Index: uint32(i % 3)}
	}
	n := f.capacity()
	for i := range n {
		o := op(i)
		f.add(&o)
	}
	for i := range n {
		if o := op(i); !f.mayHold(&o) {
			t.Fatalf("outpoint %d was added, but the filter says absent", i)
		}
	}
	fp := 0
	for i := n; i < 2*n; i++ {
		if o := op(i); f.mayHold(&o) {
			fp++
		}
	}
	// At capacity a blocked filter of 10 bits a key answers about 2%
	// wrongly; a broken hash answers far more.
	if rate := float64(fp) / float64(n); rate > 0.05 {
		t.Fatalf("false positive rate %.3f at capacity", rate)
	}
	t.Logf("false positives at capacity: %.2f%%", 100*float64(fp)/float64(n))
}

// TestKeyFilterNeverHidesACoin runs a store whose filter is small enough
// to be rebuilt several times, against one without a filter, through
// connects, disconnects, background flushes and a restart: every lookup
// (of coins, spent outputs and outpoints that never existed) must agree,
// and the filter must have answered the ones that never existed.
func TestKeyFilterNeverHidesACoin(t *testing.T) {
	skips := prometheus.NewCounter(prometheus.CounterOpts{Name: "skips"})
	dir := t.TempDir()
	genesis := *regtest(t).Params.GenesisHash
	// No coin cache: it would answer for coins the filter must know.
	opts := storeOptions{dir: dir, cacheMB: 16, memTableMB: 64, flushEvery: time.Hour, coinCacheMB: 0,
		filterBytes: 64 * 40, filterSkips: skips, genesis: genesis} // capacity 2,048 keys
	st, err := openStore(opts, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	plain := mustOpenStore(t, storeOptions{cacheMB: 16, memTableMB: 64, flushEvery: time.Hour})
	blocks := chainSpec(genesis, 1, 12, 150, 0)
	var asked []wire.OutPoint
	for _, b := range blocks {
		for _, tx := range b.Transactions {
			for k := range tx.TxOut {
				asked = append(asked, wire.OutPoint{Hash: tx.TxHash(), Index: uint32(k)})
			}
		}
	}
	for i := range 200 {
		asked = append(asked, wire.OutPoint{Hash: chainhash.Hash{byte(i), 0xbb}, Index: uint32(i)})
	}
	check := func(what string) {
		t.Helper()
		got, _, err := st.lookupMany(asked)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := plain.lookupMany(asked)
		if err != nil {
			t.Fatal(err)
		}
		for i := range asked {
			if !sameLookup(got[i], want[i]) {
				t.Fatalf("%s: outpoint %s: filtered store found=%v, plain store found=%v", what, asked[i], got[i].found, want[i].found)
			}
		}
	}
	both := func(what string, f func(*store) error) {
		t.Helper()
		for _, s := range []*store{st, plain} {
			if err := f(s); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		check(what)
	}
	st.filterWG.Wait()
	for i, b := range blocks {
		both("connect", func(s *store) error { _, err := s.connect(blockchanges.Of(b), int32(i+1)); return err })
		if i%3 == 2 {
			st.mu.Lock()
			st.startFlush() // in the background, while the next blocks connect
			st.mu.Unlock()
		}
	}
	st.settle(t)
	st.filterWG.Wait()
	st.cacheMu.RLock()
	rebuilt := st.filter != nil && st.filter.built > 0
	st.cacheMu.RUnlock()
	if !rebuilt {
		t.Fatal("the filter was never rebuilt on its own: the test proves less than it says")
	}
	// rebuildThenFlush builds a new filter while coins are pending, then
	// writes them: the new filter must know them although its snapshot
	// does not.
	rebuildThenFlush := func(what string) {
		t.Helper()
		st.cacheMu.Lock()
		st.startFilter()
		st.cacheMu.Unlock()
		st.filterWG.Wait()
		st.mu.Lock()
		err := st.flushLocked()
		st.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		check(what)
	}
	rebuildThenFlush("pending coins written after a rebuild")
	// Disconnecting restores coins spent before a rebuild that (unlike
	// the last, whose snapshot was older than the flush) never saw them.
	rebuildThenFlush("a rebuild from the flushed set")
	for i := len(blocks) - 1; i >= 8; i-- {
		both("disconnect", func(s *store) error { _, err := s.disconnect(blocks[i]); return err })
	}
	st.mu.Lock()
	err = st.flushLocked()
	st.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	check("restored coins written")
	// A restart builds the filter from badger alone.
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	if st, err = openStore(opts, discardLog()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close() })
	st.filterWG.Wait()
	check("after restart")
	for i := 8; i < len(blocks); i++ {
		both("reconnect", func(s *store) error { _, err := s.connect(blockchanges.Of(blocks[i]), int32(i+1)); return err })
	}
	if n := testutil.ToFloat64(skips); n < 200 {
		t.Fatalf("the filter answered %v lookups, want at least the 200 that never existed", n)
	}
}
