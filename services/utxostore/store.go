package utxostore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
	"github.com/btcmesh/btcmesh/internal/coin"
	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/parallel"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// store is the badger-backed UTXO set. Readers use badger snapshots and
// the coin cache; writers (connect/disconnect) are serialised by mu.
type store struct {
	db  *badger.DB
	log *slog.Logger
	mu  sync.Mutex

	// cacheMu guards cache, pend, cur and flushed. Writers (holding mu)
	// change them together, so a reader holding cacheMu sees pending
	// changes, a cache and a tip that describe exactly the set at cur.
	cacheMu sync.RWMutex
	cache   *coinCache
	// pend is what changed since the last flush (see pending).
	pend *pending
	// cur is the tip the set reflects (flushed plus pending); flushed is
	// badger's tip record.
	cur, flushed tipState

	// flushEvery is the longest pending changes wait (0: flush every
	// block); lastFlush is when the last flush started. txnEntries and
	// txnBytes are what one badger transaction holds.
	flushEvery           time.Duration
	lastFlush            time.Time
	txnEntries, txnBytes int
	// inflight is the flush writing in the background (nil when none);
	// guarded by mu.
	inflight *flushJob

	// stopFlush ends the periodic flush (nil when every block flushes);
	// flushDone is closed once it has.
	stopFlush, flushDone chan struct{}

	// filter says which outpoints badger holds no coin for (see
	// keyFilter): nil until built. building is the one being built; both
	// are guarded by cacheMu. filterBytes sizes them (0: none);
	// filterStop ends a build at close, filterWG waits for it;
	// filterSkips (nil: none) counts the badger reads filter saved.
	filter, building *keyFilter
	filterBytes      int
	filterStop       chan struct{}
	filterWG         sync.WaitGroup
	filterSkips      prometheus.Counter

	// hurry tells a recording waiting in the background to start now
	// (see recordDelay).
	hurry chan struct{}

	// plan is connect's first pass over a block, kept between blocks
	// (under mu) so that each block does not allocate and fault in fresh
	// maps; after PrepareConnect it holds that block until connected.
	plan connectPlan
}

// connectPlan is everything connecting one block reads, resolved at the
// tip: its spent coins, its new coins, the undo record and the tip it
// makes. Nothing it holds changes the set until apply records it.
type connectPlan struct {
	// ready says the plan holds the block hash at height, resolved on
	// the tip parent and not yet recorded: connectPrepared may apply it.
	ready  bool
	hash   chainhash.Hash
	parent chainhash.Hash
	height int32

	created []newCoin
	// local maps the block's outpoints so far: an index into created, or
	// spentInSet for a coin of the set it spent.
	local     *outIndex
	spentExt  []wire.OutPoint // spent coins the set held, in input order
	spentVals [][]byte        // every spent coin, in input order
	// atTip is what memory knows of every input's outpoint at the tip,
	// in input order (see lookupSpends).
	atTip  []tipCoin
	missAt []int
	missOp []wire.OutPoint
	undo   []byte
	res    connectResult
}

// spentInSet marks, in connectPlan.local, a coin of the set the block
// spent.
const spentInSet = -1

// reset empties p for a block, keeping what it allocated.
func (p *connectPlan) reset() {
	if p.local == nil {
		p.local = newOutIndex()
	}
	p.ready = false
	p.local.reset()
	clear(p.created) // drop references to the last block's coins
	clear(p.spentVals)
	clear(p.atTip)
	p.created, p.spentExt, p.spentVals, p.atTip = p.created[:0], p.spentExt[:0], p.spentVals[:0], p.atTip[:0]
	p.missAt, p.missOp = p.missAt[:0], p.missOp[:0]
	p.undo, p.res = nil, connectResult{}
}

// storeOptions are what openStore needs from Config.
type storeOptions struct {
	dir        string
	cacheMB    int
	memTableMB int
	// flushEvery is how long connected blocks may stay in memory before
	// they are written; 0 writes every block at once.
	flushEvery time.Duration
	// coinCacheMB bounds the coin cache; 0 disables it.
	coinCacheMB int
	// filterBytes sizes the key filter; 0 disables it. filterSkips, when
	// set, counts the badger reads it saved.
	filterBytes int
	filterSkips prometheus.Counter
	genesis     chainhash.Hash
}

// openStore opens (or creates) the set at o.dir. A new store starts at the
// genesis block with an empty set.
func openStore(o storeOptions, log *slog.Logger) (*store, error) {
	opts := badger.DefaultOptions(o.dir).
		WithLogger(badgerLogger{log: log}).
		// Flushes are rare and each is a consistent state: fsync them.
		WithSyncWrites(true).
		WithBlockCacheSize(int64(o.cacheMB) << 20).
		// One block is one transaction: badger allows 15% of the memtable
		// per transaction (see the package comment).
		WithMemTableSize(int64(o.memTableMB) << 20).
		WithNumMemtables(3).
		// Large undo records go to the value log; one entry must fit a file.
		WithValueLogFileSize(1<<30 - 1).
		// Writers are serialised by store.mu, so conflict tracking is waste.
		WithDetectConflicts(false).
		WithMetricsEnabled(true)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open utxo store %s: %w", o.dir, err)
	}
	// A flush must fit one badger transaction: 15% of the memtable in
	// bytes and in skiplist nodes. One block may use all of it; pending
	// changes are flushed before they pass half.
	batch := (o.memTableMB << 20) * 15 / 100
	s := &store{db: db, log: log, cache: newCoinCache(o.coinCacheMB << 20), pend: newPending(),
		flushEvery: o.flushEvery, lastFlush: time.Now(),
		txnEntries: batch / skl.MaxNodeSize, txnBytes: batch, hurry: make(chan struct{}, 1)}
	if err := s.init(&o.genesis); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		s.cur, err = readTip(txn)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.flushed = s.cur
	if o.filterBytes > 0 {
		s.filterBytes, s.filterStop, s.filterSkips = o.filterBytes, make(chan struct{}), o.filterSkips
		s.cacheMu.Lock()
		s.startFilter()
		s.cacheMu.Unlock()
	}
	if o.flushEvery > 0 {
		s.stopFlush, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flushLoop(o.flushEvery)
	}
	return s, nil
}

// init writes the meta and genesis tip records of a new store, or checks
// that an existing one belongs to this network.
func (s *store) init(genesis *chainhash.Hash) error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey())
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if err := txn.Set(metaKey(), encodeMeta(genesis)); err != nil {
				return fmt.Errorf("write meta: %w", err)
			}
			if err := txn.Set(tipKey(), tipState{hash: *genesis}.encode()); err != nil {
				return fmt.Errorf("write genesis tip: %w", err)
			}
			s.log.Info("utxo store created", "genesis", genesis.String())
			return nil
		case err != nil:
			return fmt.Errorf("read meta: %w", err)
		}
		meta, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read meta: %w", err)
		}
		if len(meta) != 1+chainhash.HashSize || meta[0] != schemaVersion {
			return fmt.Errorf("utxo store has unknown schema (meta %x)", meta)
		}
		if !bytes.Equal(meta[1:], genesis[:]) {
			var other chainhash.Hash
			copy(other[:], meta[1:])
			return fmt.Errorf("utxo store belongs to the network with genesis %s, not %s (check --network and --datadir)",
				other, genesis)
		}
		return nil
	})
}

func (s *store) close() error {
	if s.stopFlush != nil {
		close(s.stopFlush)
		<-s.flushDone
	}
	if s.filterStop != nil {
		close(s.filterStop)
		s.filterWG.Wait()
	}
	s.mu.Lock()
	err := s.flushLocked()
	s.mu.Unlock()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// flushLoop flushes pending changes that waited flushEvery, until
// stopFlush closes (blocks connecting flush as they go; this catches a
// chain that stopped moving).
func (s *store) flushLoop(every time.Duration) {
	defer close(s.flushDone)
	tick := time.NewTicker(every / 2)
	defer tick.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-tick.C:
			s.mu.Lock()
			if time.Since(s.lastFlush) >= every {
				s.startFlush() // reaps the previous flush first
			} else if err := s.reap(false); err != nil {
				s.log.Error("utxo store flush failed; will retry", "err", err)
			}
			s.mu.Unlock()
		}
	}
}

// flushJob is one background flush: the frozen layer it writes and the
// tip that layer completes.
type flushJob struct {
	layer *pending
	tip   tipState
	done  chan struct{} // closed when the write returned
	err   error         // the write's error, set before done closes
}

// startFlush freezes the pending changes and writes them in the
// background (see pending), so that connecting blocks never waits for
// badger; the caller holds mu. At most one flush is in flight: while one
// is, startFlush does nothing.
func (s *store) startFlush() {
	if err := s.reap(false); err != nil {
		s.log.Error("utxo store flush failed; will retry", "err", err)
		return
	}
	if s.inflight != nil || (s.pend.entries() == 0 && s.cur == s.flushed) {
		return
	}
	s.lastFlush = time.Now()
	s.cacheMu.Lock()
	frozen := s.pend
	s.pend = newPending()
	s.pend.base = frozen
	job := &flushJob{layer: frozen, tip: s.cur, done: make(chan struct{})}
	s.cacheMu.Unlock()
	s.inflight = job
	go func() {
		job.err = s.write(job.layer, job.tip)
		close(job.done)
	}()
}

// reap ends the background flush once it has written (with wait, waiting
// for it): the frozen layer is dropped and badger's tip is the one it
// wrote. A failed write is retried here, holding mu; if it fails again
// the flush stays in flight and reap returns the error. The caller holds
// mu, so no reader of the live layer works from a badger snapshot older
// than the write while base goes.
func (s *store) reap(wait bool) error {
	j := s.inflight
	if j == nil {
		return nil
	}
	if wait {
		<-j.done
	} else {
		select {
		case <-j.done:
		default:
			return nil
		}
	}
	if j.err != nil {
		s.log.Error("utxo store flush failed; retrying", "err", j.err)
		if j.err = s.write(j.layer, j.tip); j.err != nil {
			return j.err
		}
	}
	s.cacheMu.Lock()
	if s.pend.base == j.layer {
		s.pend.base = nil
	}
	s.flushed = j.tip
	s.cacheMu.Unlock()
	s.inflight = nil
	return nil
}

// flushLocked writes every pending change and the tip record to badger
// before it returns: it waits for a background flush, then writes the
// live layer in one transaction. The caller holds mu. A failed flush
// keeps the changes pending.
func (s *store) flushLocked() error {
	s.lastFlush = time.Now()
	if err := s.reap(true); err != nil {
		return err
	}
	if s.pend.entries() == 0 && s.cur == s.flushed {
		return nil
	}
	if err := s.write(s.pend, s.cur); err != nil {
		return err
	}
	s.cacheMu.Lock()
	s.pend, s.flushed = newPending(), s.cur
	s.cacheMu.Unlock()
	return nil
}

// write writes one layer of changes, without its base, and tip as the tip
// record, in one fsynced badger transaction. It only reads p, which no
// one changes while it is frozen or while the caller holds mu.
func (s *store) write(p *pending, tip tipState) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for op, e := range p.coins {
		k := coinKey(&op.Hash, op.Index)
		var err error
		if e.val == nil {
			err = txn.Delete(k)
		} else {
			err = txn.Set(k, e.val)
		}
		if err != nil {
			return txnErr(err)
		}
	}
	for h := range p.undoGone {
		if _, again := p.undo[h]; !again {
			if err := txn.Delete(undoKey(&h)); err != nil {
				return txnErr(err)
			}
		}
	}
	for h, rec := range p.undo {
		if err := txn.Set(undoKey(&h), rec); err != nil {
			return txnErr(err)
		}
	}
	if err := txn.Set(tipKey(), tip.encode()); err != nil {
		return txnErr(err)
	}
	if err := txn.Commit(); err != nil {
		return txnErr(err)
	}
	return nil
}

// makeRoom prepares the pending changes to take one block's: add writes
// of addBytes. A block that would not fit one flush on its own is refused
// (ErrTxnTooBig) before anything changes; when it would take the live
// layer past half of one flush, the layer is frozen and flushed in the
// background first (after waiting for the flush before it, so that at
// most two layers are ever held). The caller holds mu.
func (s *store) makeRoom(add, addBytes int) error {
	if add > s.txnEntries || addBytes > s.txnBytes {
		return txnErr(badger.ErrTxnTooBig)
	}
	if n := s.pend.entries(); n > 0 && (n+add > s.txnEntries/2 || s.pend.bytes+addBytes > s.txnBytes/2) {
		if err := s.reap(true); err != nil {
			return err
		}
		s.startFlush()
	}
	return nil
}

// afterChange starts a background flush once the pending changes waited
// flushEvery, and flushes at once when it is 0; the caller holds mu. A
// failed flush keeps them pending: the block is connected in memory and
// the next flush retries.
func (s *store) afterChange() {
	if time.Since(s.lastFlush) < s.flushEvery {
		return
	}
	if s.flushEvery > 0 {
		s.startFlush()
		return
	}
	if err := s.flushLocked(); err != nil {
		s.log.Error("utxo store flush failed; will retry", "err", err)
	}
}

func readTip(txn *badger.Txn) (tipState, error) {
	item, err := txn.Get(tipKey())
	if err != nil {
		return tipState{}, fmt.Errorf("read tip: %w", err)
	}
	var t tipState
	err = item.Value(func(v []byte) error {
		var derr error
		t, derr = decodeTip(v)
		return derr
	})
	return t, err
}

// tip returns the current tip record.
func (s *store) tip() (tipState, error) {
	s.readLock()
	defer s.cacheMu.RUnlock()
	return s.cur, nil
}

// notTip is the rule a block breaks when it does not extend the tip.
const notTip rules.Kind = "prev-blk-not-best"

// connectResult summarises one connected block.
type connectResult struct {
	tip     tipState
	spent   int
	created int
	// cacheHits counts spent coins found in the coin cache (not read
	// from badger).
	cacheHits int
}

// newCoin is an output a block creates.
type newCoin struct {
	op        wire.OutPoint
	val       []byte // encoded coin
	amount    int64  // its amount, for the tip's counters
	overwrote bool   // an unspent coin with the same outpoint existed
	spent     bool   // spent later in the same block: never written
}

// connect applies blk at height: to the pending changes, which a flush
// writes to badger (see pending); with flushEvery 0 at once, in one badger
// transaction.
//
// What it verifies and what it trusts: the block must extend the tip
// (height and parent), and every input must spend a coin that is in the
// set at the tip, or created earlier in the same block, and not spent
// twice; otherwise nothing is written (MissingInputs). Spent coins come
// from the coin cache, which is exact (see coinCache), or from badger;
// never from the caller. The caller (blockvalidator) is trusted with
// everything else, scripts and amounts included, and with BIP30 unless it
// asks prepare to check it: it rejects a block that would overwrite an
// unspent output, except the two historical mainnet blocks that did so
// with a duplicate coinbase, and after BIP34 a duplicate txid needs a
// duplicate coinbase. So only coinbase outputs can overwrite a coin: the
// store looks those up (to keep its counters exact) and writes the other
// new outputs without reading.
//
// Every read happens before the first change (resolve), so a failure
// changes nothing, and an output created and spent in the same block is
// never recorded at all.
func (s *store) connect(blk *blockchanges.Changes, height int32) (connectResult, error) {
	s.lock()
	if err := s.resolve(blk, height, false); err != nil {
		s.mu.Unlock()
		return connectResult{}, err
	}
	return s.applyAndUnlock()
}

// errNotPrepared is connectPrepared's answer when the plan does not hold
// the block on the current tip.
var errNotPrepared = errors.New("block not prepared on the current tip")

// prepare resolves blk at height on the tip as connect would, keeps the
// plan for connectPrepared, and returns every coin the block spends in
// input order, packed as GetUtxos answers them. With bip30 it first
// checks that no new output overwrites an unspent coin. It changes
// nothing.
func (s *store) prepare(blk *blockchanges.Changes, height int32, bip30 bool) ([]byte, tipState, error) {
	s.lock()
	defer s.mu.Unlock()
	if err := s.resolve(blk, height, bip30); err != nil {
		return nil, tipState{}, err
	}
	p := &s.plan
	p.ready = true
	out := make([]byte, 0, len(p.undo)+2*len(p.spentVals))
	for _, v := range p.spentVals {
		out = packed.AppendRecord(out, v)
	}
	return out, s.cur, nil
}

// connectPrepared connects the block the last prepare resolved, named by
// hash at height, if the tip is still its parent; otherwise it changes
// nothing and returns errNotPrepared.
func (s *store) connectPrepared(hash chainhash.Hash, height int32) (connectResult, error) {
	s.lock()
	p := &s.plan
	if !p.ready || p.hash != hash || p.height != height || p.parent != s.cur.hash || height != s.cur.height+1 {
		s.mu.Unlock()
		return connectResult{}, errNotPrepared
	}
	return s.applyAndUnlock()
}

// resolve is connect's first pass: it reads every coin blk spends and
// builds every coin it creates, its undo record and the tip it makes,
// into s.plan, changing nothing. With bip30 it fails first when a new
// output would overwrite an unspent coin. The caller holds mu.
func (s *store) resolve(blk *blockchanges.Changes, height int32, bip30 bool) error {
	p := &s.plan
	p.reset()
	hash := blk.Hash
	tip := s.cur
	if blk.Parent != tip.hash || height != tip.height+1 {
		return rules.New(notTip, "block %s at height %d has parent %s, but the tip is %s at height %d",
			hash, height, blk.Parent, tip.hash, tip.height)
	}
	sn := &snapshot{db: s.db}
	defer sn.discard()
	// The reads first, side by side: the BIP30 check (which alone uses
	// sn meanwhile) and what memory knows of every input's coin.
	var bip30Err error
	var wg sync.WaitGroup
	if bip30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bip30Err = s.checkOverwrites(sn, blk)
		}()
	}
	s.lookupSpends(blk)
	wg.Wait()
	if bip30Err != nil {
		return bip30Err
	}

	p.spentVals = slices.Grow(p.spentVals, len(p.atTip))
	var (
		cbID  chainhash.Hash
		hasCB bool
	)
	in := 0 // index of the input in p.atTip
	for i := range blk.Txs {
		tx := &blk.Txs[i]
		txid := tx.Txid
		cb := tx.Coinbase(i)
		if cb {
			cbID, hasCB = txid, true
		} else {
			for j, op := range tx.Spends {
				at := p.atTip[in]
				in++
				if k, ok := p.local.get(op); ok {
					if k == spentInSet || p.created[k].spent {
						return missingInput(txid, j, op)
					}
					p.created[k].spent = true
					p.spentVals = append(p.spentVals, p.created[k].val)
					continue
				}
				p.local.set(op, spentInSet)
				if at.known && at.val == nil {
					return missingInput(txid, j, op)
				}
				p.spentExt = append(p.spentExt, op)
				if at.known {
					p.spentVals = append(p.spentVals, at.val)
					p.res.cacheHits++
					continue
				}
				p.missAt = append(p.missAt, len(p.spentVals))
				p.missOp = append(p.missOp, op)
				p.spentVals = append(p.spentVals, nil)
			}
		}
		for vout, out := range tx.Outs {
			if unspendable(out.PkScript) {
				continue
			}
			// One allocation per coin: the cache keeps it, and must not
			// pin a whole block's worth of encodings for one survivor.
			val := coin.Append(make([]byte, 0, 12+len(out.PkScript)),
				coin.Coin{Height: height, Coinbase: cb, Amount: out.Value, Script: out.PkScript})
			op := wire.OutPoint{Hash: txid, Index: uint32(vout)}
			p.local.set(op, len(p.created))
			p.created = append(p.created, newCoin{op: op, val: val, amount: out.Value})
		}
	}

	for k, op := range p.missOp {
		item, err := sn.txn().Get(coinKey(&op.Hash, op.Index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			txid, j := findInput(blk, op)
			return missingInput(txid, j, op)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", op, err)
		}
		if p.spentVals[p.missAt[k]], err = item.ValueCopy(nil); err != nil {
			return fmt.Errorf("read %s: %w", op, err)
		}
	}
	if hasCB {
		for k := range p.created {
			if p.created[k].op.Hash != cbID {
				break
			}
			old, found, err := s.coinAt(sn, p.created[k].op)
			if err != nil {
				return err
			}
			if found {
				// A duplicate coinbase (pre-BIP34 mainnet, blocks 91842
				// and 91880) overwrites the old output, as in Core.
				s.log.Warn("output overwritten", "txid", cbID.String(), "vout", p.created[k].op.Index, "height", height)
				p.created[k].overwrote = true
				tip.txouts--
				tip.amount -= old.Amount
			}
		}
	}

	// Counters and the undo record (uvarint(n) then the spent coins in
	// input order).
	undoLen := binary.MaxVarintLen64
	for _, v := range p.spentVals {
		undoLen += len(v)
	}
	undo := binary.AppendUvarint(make([]byte, 0, undoLen), uint64(len(p.spentVals)))
	for _, v := range p.spentVals {
		c, _, err := coin.Decode(v)
		if err != nil {
			return fmt.Errorf("spent coin: %w", err)
		}
		tip.txouts--
		tip.amount -= c.Amount
		undo = append(undo, v...)
	}
	for _, nc := range p.created {
		tip.txouts++
		tip.amount += nc.amount
	}
	tip.hash, tip.height = hash, height
	p.hash, p.parent, p.height, p.undo = hash, blk.Parent, height, undo
	p.res.tip, p.res.spent, p.res.created = tip, len(p.spentVals), len(p.created)
	return nil
}

// checkOverwrites fails with BIP30 when an output blk creates holds an
// unspent coin at the tip. The key filter answers most outputs, new ones,
// at once (it holds every coin of the set: see keyFilter); memory
// answers the rest, then badger (read in sn). The caller holds mu.
func (s *store) checkOverwrites(sn *snapshot, blk *blockchanges.Changes) error {
	overwrite := func(op wire.OutPoint) error {
		return rules.New(rules.BIP30, "block %s overwrites unspent output %s:%d", blk.Hash, op.Hash, op.Index)
	}
	var ask []wire.OutPoint
	skipped := 0
	s.cacheMu.RLock()
	for i := range blk.Txs {
		tx := &blk.Txs[i]
		for vout, out := range tx.Outs {
			if unspendable(out.PkScript) {
				continue // never in the set
			}
			op := wire.OutPoint{Hash: tx.Txid, Index: uint32(vout)}
			if !s.mayHold(&op) {
				skipped++
				continue
			}
			if v, known := s.atTip(op); known {
				if v != nil {
					s.cacheMu.RUnlock()
					return overwrite(op)
				}
				continue
			}
			ask = append(ask, op)
		}
	}
	s.cacheMu.RUnlock()
	if skipped > 0 && s.filterSkips != nil {
		s.filterSkips.Add(float64(skipped))
	}
	for _, op := range ask {
		_, err := sn.txn().Get(coinKey(&op.Hash, op.Index))
		switch {
		case err == nil:
			return overwrite(op)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("read %s: %w", op, err)
		}
	}
	return nil
}

// applyAndUnlock is connect's second pass: it records the plan resolve
// made, and nothing in it can fail: the block is connected from here on.
// The caller holds mu, which it releases. When blocks stay in memory
// until a later flush, the recording runs after it returns (once its
// answer had time to leave: see recordDelay), holding mu and cacheMu,
// taken here: every reader of the set takes cacheMu and every writer mu,
// so no one sees the set before it is done, and the caller has its
// answer a pass earlier. When every block is flushed as it
// connects (flushEvery 0), it returns once the block is written.
func (s *store) applyAndUnlock() (connectResult, error) {
	p := &s.plan
	p.ready = false
	// The block's changes must fit one flush; make room first when they
	// would take the pending changes past half of one.
	add := len(p.spentExt) + len(p.created) + 2
	addBytes := len(p.undo) + len(p.spentExt)*(coinKeyLen+2) + 64
	for _, nc := range p.created {
		addBytes += coinKeyLen + 2 + len(nc.val)
	}
	if err := s.makeRoom(add, addBytes); err != nil {
		s.mu.Unlock()
		return connectResult{}, err
	}
	res := p.res
	// A hurry sent before this point was for an earlier recording, or
	// from a reader that takes cacheMu before the lock below (all but
	// one a few instructions from it); one sent after it is from a
	// reader waiting for this recording.
	select {
	case <-s.hurry:
	default:
	}
	s.cacheMu.Lock()
	finish := func() {
		s.record()
		s.cacheMu.Unlock()
		s.afterChange()
	}
	if s.flushEvery == 0 {
		finish()
		s.mu.Unlock()
		return res, nil
	}
	go func() {
		defer s.mu.Unlock()
		wait := time.NewTimer(recordDelay)
		select {
		case <-wait.C:
		case <-s.hurry:
			wait.Stop()
		}
		finish()
	}()
	return res, nil
}

// recordDelay is how long a recording left to the background waits for
// its caller's answer to leave first, unless a call needs the set sooner
// (hurryRecord). gRPC's writer yields once before it sends a small
// answer, to the runtime's global run queue, which a core busy with
// goroutines of its own does not look at: a recording started at once
// can hold the answer back until it is done.
const recordDelay = time.Millisecond

// hurryRecord starts a recording waiting out recordDelay at once; every
// call that reads or changes the set calls it before it takes mu or
// cacheMu. (A change that arrives while a block is being connected may
// still wait out the delay: its hurry came before the recording's.)
func (s *store) hurryRecord() {
	select {
	case s.hurry <- struct{}{}:
	default:
	}
}

// lock takes mu for a change of the set.
func (s *store) lock() {
	s.hurryRecord()
	s.mu.Lock()
}

// readLock takes cacheMu to read the set.
func (s *store) readLock() {
	s.hurryRecord()
	s.cacheMu.RLock()
}

// record applies the resolved plan to the pending changes, the coin
// cache and the key filters. The caller holds mu and cacheMu.
func (s *store) record() {
	p := &s.plan
	for _, op := range p.spentExt {
		s.pend.spend(op)
		s.cache.del(op)
	}
	for _, nc := range p.created {
		switch {
		case !nc.spent:
			s.pend.create(nc.op, nc.val, nc.overwrote)
			s.cache.put(nc.op, nc.val)
			s.addToFilters(&nc.op)
		case nc.overwrote:
			s.pend.spend(nc.op) // the overwritten coin is gone too
			s.cache.del(nc.op)
		}
	}
	s.pend.addUndo(p.hash, p.undo)
	s.cur = p.res.tip
}

// atTip answers op from memory when it can: known is false when only
// badger can (val nil with known: op holds no coin). The coin cache goes
// first: it only holds coins unspent at cur (see coinCache), and the
// coins a block spends are usually there. The caller holds cacheMu.
func (s *store) atTip(op wire.OutPoint) (val []byte, known bool) {
	if v, ok := s.cache.get(op); ok {
		return v, true
	}
	return s.pend.get(op)
}

// tipCoin is what memory knows of one outpoint at the tip (atTip).
type tipCoin struct {
	val   []byte
	known bool
}

// parallelLookups is how many inputs' reads are worth a goroutine of
// their own: a block of twice as many splits them over the cores.
const parallelLookups = 256

// lookupSpends fills s.plan.atTip with atTip's answer for every input of
// blk (the coinbase spends nothing), in input order. The reads only read
// memory, so a large block's run on every core; the caller holds mu, and
// cacheMu is held here for all of them.
func (s *store) lookupSpends(blk *blockchanges.Changes) {
	p := &s.plan
	var ops []*wire.OutPoint
	for i := range blk.Txs {
		for j := range blk.Txs[i].Spends {
			ops = append(ops, &blk.Txs[i].Spends[j])
		}
	}
	n := len(ops)
	p.atTip = slices.Grow(p.atTip[:0], n)[:n]
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	parallel.Ranges(n, parallelLookups, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			v, known := s.atTip(*ops[k])
			p.atTip[k] = tipCoin{val: v, known: known}
		}
	})
}

// coinAt reads one coin at cur: from memory (atTip), else from sn
// (badger holds the flushed set; pending names every outpoint changed
// since).
func (s *store) coinAt(sn *snapshot, op wire.OutPoint) (coin.Coin, bool, error) {
	s.cacheMu.RLock()
	v, known := s.atTip(op)
	absent := !known && !s.mayHold(&op)
	s.cacheMu.RUnlock()
	switch {
	case absent || known && v == nil:
		return coin.Coin{}, false, nil
	case known:
		c, _, err := coin.Decode(v)
		return c, err == nil, err
	}
	return getCoin(sn.txn(), coinKey(&op.Hash, op.Index))
}

// snapshot is a badger read transaction, opened when first read from:
// opening one waits for a commit in flight (a background flush, which
// can take a while) to finish, and a block whose coins memory holds
// needs none. Its reads see the set at the tip when the caller holds mu
// from the first read to the last (see pending).
type snapshot struct {
	db *badger.DB
	t  *badger.Txn
}

// txn returns the read transaction, opening it if need be.
func (sn *snapshot) txn() *badger.Txn {
	if sn.t == nil {
		sn.t = sn.db.NewTransaction(false)
	}
	return sn.t
}

// discard ends the read transaction, if one was opened.
func (sn *snapshot) discard() {
	if sn.t != nil {
		sn.t.Discard()
	}
}

// missingInput is the rule a block breaks by spending a coin the set does
// not hold.
func missingInput(txid chainhash.Hash, j int, op wire.OutPoint) error {
	return rules.New(rules.MissingInputs, "tx %s input %d spends %s:%d, which does not exist or is spent",
		txid, j, op.Hash, op.Index)
}

// findInput names the first input of blk spending op (for error messages).
func findInput(blk *blockchanges.Changes, op wire.OutPoint) (chainhash.Hash, int) {
	for _, tx := range blk.Txs {
		for j, spent := range tx.Spends {
			if spent == op {
				return tx.Txid, j
			}
		}
	}
	return chainhash.Hash{}, 0
}

// undoRecord reads the undo record of hash: pending, or flushed to badger.
func (s *store) undoRecord(sn *snapshot, hash chainhash.Hash) ([]byte, error) {
	rec, ok, gone := s.pend.undoOf(hash)
	if ok {
		return rec, nil
	}
	if gone {
		return nil, fmt.Errorf("read undo data of %s: already disconnected", hash)
	}
	item, err := sn.txn().Get(undoKey(&hash))
	if err != nil {
		return nil, fmt.Errorf("read undo data of %s: %w", hash, err)
	}
	rec, err = item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("read undo data of %s: %w", hash, err)
	}
	return rec, nil
}

// disconnect undoes blk, which must be the tip, as one change of the set
// (pending until the next flush, like connect's).
func (s *store) disconnect(blk *wire.MsgBlock) (tipState, error) {
	s.lock()
	defer s.mu.Unlock()
	hash := blk.BlockHash()
	tip := s.cur
	if hash != tip.hash {
		return tipState{}, status.Errorf(codes.FailedPrecondition, "block %s is not the tip %s (height %d)", hash, tip.hash, tip.height)
	}
	if tip.height == 0 {
		return tipState{}, status.Errorf(codes.FailedPrecondition, "cannot disconnect the genesis block %s", hash)
	}
	sn := &snapshot{db: s.db}
	defer sn.discard()
	undo, err := s.undoRecord(sn, hash)
	if err != nil {
		return tipState{}, err
	}
	spent, err := splitUndo(undo)
	if err != nil {
		return tipState{}, fmt.Errorf("undo data of %s: %w", hash, err)
	}
	want := 0
	for i, tx := range blk.Transactions {
		if !(i == 0 && blockchain.IsCoinBaseTx(tx)) {
			want += len(tx.TxIn)
		}
	}
	if want != len(spent) {
		return tipState{}, fmt.Errorf("undo data of %s holds %d coins, the block spends %d", hash, len(spent), want)
	}
	// changes are the coin changes in the order they are made (nil val:
	// removed), applied once all are known: the same outpoint can be
	// restored and then removed (an output spent in its own block).
	// existed is whether the outpoint held a coin just before.
	type change struct {
		op      wire.OutPoint
		val     []byte
		existed bool
	}
	var changes []change
	now := make(map[wire.OutPoint][]byte) // outpoints changed so far (nil: no coin)
	read := func(op wire.OutPoint) (coin.Coin, bool, error) {
		if v, ok := now[op]; ok {
			if v == nil {
				return coin.Coin{}, false, nil
			}
			c, _, err := coin.Decode(v)
			return c, err == nil, err
		}
		return s.coinAt(sn, op)
	}
	next := len(spent)
	for i := len(blk.Transactions) - 1; i >= 0; i-- {
		tx := blk.Transactions[i]
		txid := tx.TxHash()
		for vout := len(tx.TxOut) - 1; vout >= 0; vout-- {
			if unspendable(tx.TxOut[vout].PkScript) {
				continue
			}
			op := wire.OutPoint{Hash: txid, Index: uint32(vout)}
			old, found, err := read(op)
			if err != nil {
				return tipState{}, err
			}
			if !found {
				s.log.Warn("disconnect: output already missing", "txid", txid.String(), "vout", vout)
				continue
			}
			tip.txouts--
			tip.amount -= old.Amount
			changes = append(changes, change{op: op, existed: true})
			now[op] = nil
		}
		if i == 0 && blockchain.IsCoinBaseTx(tx) {
			continue
		}
		for j := len(tx.TxIn) - 1; j >= 0; j-- {
			next--
			op := tx.TxIn[j].PreviousOutPoint
			c, _, err := coin.Decode(spent[next])
			if err != nil {
				return tipState{}, fmt.Errorf("undo data of %s: %w", hash, err)
			}
			old, found, err := read(op)
			if err != nil {
				return tipState{}, err
			}
			if found {
				s.log.Warn("disconnect: restored output already present", "txid", op.Hash.String(), "vout", op.Index)
				tip.txouts--
				tip.amount -= old.Amount
			}
			val := bytes.Clone(spent[next]) // not the whole undo record
			changes = append(changes, change{op: op, val: val, existed: found})
			now[op] = val
			tip.txouts++
			tip.amount += c.Amount
		}
	}
	tip.hash, tip.height = blk.Header.PrevBlock, tip.height-1
	add, addBytes := len(changes)+2, 64
	for _, c := range changes {
		addBytes += coinKeyLen + 2 + len(c.val)
	}
	if err := s.makeRoom(add, addBytes); err != nil {
		return tipState{}, err
	}

	s.cacheMu.Lock()
	for _, c := range changes {
		if c.val == nil {
			s.pend.spend(c.op)
			s.cache.del(c.op)
		} else {
			s.pend.create(c.op, c.val, c.existed)
			s.cache.put(c.op, c.val)
			s.addToFilters(&c.op)
		}
	}
	s.pend.dropUndo(hash)
	s.cur = tip
	s.cacheMu.Unlock()
	s.afterChange()
	return tip, nil
}

// splitUndo splits an undo record into its encoded coins.
func splitUndo(b []byte) ([][]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)) {
		return nil, errors.New("bad coin count")
	}
	b = b[used:]
	out := make([][]byte, 0, n)
	for range n {
		_, size, err := coin.Decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, b[:size:size])
		b = b[size:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(b))
	}
	return out, nil
}

// getCoin reads one coin (copied) in txn.
func getCoin(txn *badger.Txn, k []byte) (coin.Coin, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return coin.Coin{}, false, nil
	}
	if err != nil {
		return coin.Coin{}, false, fmt.Errorf("read coin: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return coin.Coin{}, false, fmt.Errorf("read coin: %w", err)
	}
	c, _, err := coin.Decode(v)
	if err != nil {
		return coin.Coin{}, false, err
	}
	return c, true, nil
}

// txnErr explains badger's transaction size limit.
func txnErr(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("block does not fit one badger transaction (raise --utxostore-memtable-mb): %w", err)
	}
	return fmt.Errorf("write utxo set: %w", err)
}

// lookup is one answer of lookupMany.
type lookup struct {
	found bool
	coin  coin.Coin
}

// lookupMany is lookupRaw with the coins decoded.
func (s *store) lookupMany(ops []wire.OutPoint) ([]lookup, tipState, error) {
	vals, tip, err := s.lookupRaw(ops)
	if err != nil {
		return nil, tipState{}, err
	}
	out := make([]lookup, len(ops))
	for i, v := range vals {
		if v == nil {
			continue
		}
		c, _, err := coin.Decode(v)
		if err != nil {
			return nil, tipState{}, fmt.Errorf("coin %s: %w", ops[i], err)
		}
		out[i] = lookup{found: true, coin: c}
	}
	return out, tip, nil
}

// lookupRaw answers many outpoints, each with its encoded coin (nil: no
// coin), and the tip they reflect: from the pending changes, the coin
// cache, or a badger snapshot, all read under one hold of cacheMu, so the
// answers are the set at one tip (a flush running meanwhile only writes
// outpoints pending answers). Coins read from badger are added to the
// cache when the tip has not moved since: they are usually about to be
// spent by the block being validated. The answers must not be modified.
func (s *store) lookupRaw(ops []wire.OutPoint) ([][]byte, tipState, error) {
	out := make([][]byte, len(ops))
	var found []int
	s.readLock()
	tip := s.cur
	err := func() error {
		var miss []int
		skipped := 0
		for i := range ops {
			v, known := s.atTip(ops[i])
			switch {
			case known:
				out[i] = v // nil when spent since the flush
			case s.mayHold(&ops[i]):
				miss = append(miss, i)
			default:
				skipped++
			}
		}
		if skipped > 0 && s.filterSkips != nil {
			s.filterSkips.Add(float64(skipped))
		}
		if len(miss) == 0 {
			return nil
		}
		txn := s.db.NewTransaction(false)
		defer txn.Discard()
		for _, i := range miss {
			item, err := txn.Get(coinKey(&ops[i].Hash, ops[i].Index))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("outpoint %s:%d: %w", ops[i].Hash, ops[i].Index, err)
			}
			if out[i], err = item.ValueCopy(nil); err != nil {
				return fmt.Errorf("outpoint %s:%d: %w", ops[i].Hash, ops[i].Index, err)
			}
			found = append(found, i)
		}
		return nil
	}()
	s.cacheMu.RUnlock()
	if err != nil {
		return nil, tipState{}, err
	}
	if len(found) > 0 {
		s.cacheMu.Lock()
		if s.cur == tip {
			for _, i := range found {
				s.cache.put(ops[i], out[i])
			}
		}
		s.cacheMu.Unlock()
	}
	return out, tip, nil
}

// badgerLogger sends badger's logs to slog; its chatty info goes to debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger", "msg", fmt.Sprintf(f, a...))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger", "msg", fmt.Sprintf(f, a...))
}
func (l badgerLogger) Infof(f string, a ...any) {
	l.log.Debug("badger", "msg", fmt.Sprintf(f, a...))
}
func (l badgerLogger) Debugf(f string, a ...any) {
	l.log.Debug("badger", "msg", fmt.Sprintf(f, a...))
}
