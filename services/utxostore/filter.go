package utxostore

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/dgraph-io/badger/v4"
)

// keyFilter is a Bloom filter over every outpoint badger may hold a coin
// for, so that looking up an outpoint that never held one — the BIP30
// check of every new transaction's outputs, about a third of a block's
// lookups — needs no badger read. Badger's tables have filters of their
// own, but its memtables do not, and searching them costs microseconds
// per key.
//
// It never answers "absent" for an outpoint badger holds: every key in
// badger when the filter's build began is added by the build, and every
// coin created or restored since (and so every key written since) is
// added as it enters the pending changes (store.connect, disconnect),
// together with those pending when the build began. Spent coins stay in
// it; once more keys were added than it holds well, the store builds a
// new one (store.startFilter) and uses the old until it is done.
//
// It is a blocked filter: the bits of one outpoint lie in one 64-byte
// block, so a lookup touches one cache line. store.cacheMu guards it.
type keyFilter struct {
	blocks [][8]uint64
	// added counts adds; built is added when the build ended.
	added, built int
}

// filterBitsPerKey is how many bits a filter spends per outpoint it holds
// well (about 2% false positives); more keys than that trigger a rebuild.
const filterBitsPerKey = 10

// filterProbes is how many bits of its block one outpoint sets.
const filterProbes = 4

// newKeyFilter returns an empty filter of about size bytes.
func newKeyFilter(size int) *keyFilter {
	return &keyFilter{blocks: make([][8]uint64, max(1, size/64))}
}

// capacity is how many outpoints the filter holds well.
func (f *keyFilter) capacity() int { return len(f.blocks) * 512 / filterBitsPerKey }

// spots returns op's block and the bits it sets there (a txid is already
// a uniform hash; mixing the index in keeps a transaction's outputs
// apart, and an attacker grinding txids only buys false positives).
func (f *keyFilter) spots(op *wire.OutPoint) (blk *[8]uint64, h uint64) {
	h1 := binary.LittleEndian.Uint64(op.Hash[0:8]) ^ uint64(op.Index)*0x9e3779b97f4a7c15
	h2 := binary.LittleEndian.Uint64(op.Hash[8:16]) + uint64(op.Index)
	hi, _ := bits.Mul64(mix(h1), uint64(len(f.blocks)))
	return &f.blocks[hi], mix(h2)
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// add records that badger may hold op.
func (f *keyFilter) add(op *wire.OutPoint) {
	blk, h := f.spots(op)
	for range filterProbes {
		blk[h>>6&7] |= 1 << (h & 63)
		h >>= 9
	}
	f.added++
}

// mayHold is false only when badger holds no coin at op.
func (f *keyFilter) mayHold(op *wire.OutPoint) bool {
	blk, h := f.spots(op)
	for range filterProbes {
		if blk[h>>6&7]&(1<<(h&63)) == 0 {
			return false
		}
		h >>= 9
	}
	return true
}

// filterBatch is how many keys a build adds per hold of cacheMu.
const filterBatch = 4096

// startFilter builds a new filter in the background, which replaces the
// one in use (if any) when done; the caller holds cacheMu (for writing).
// Coins created from now on go into both (addToFilters).
func (s *store) startFilter() {
	if s.filterBytes <= 0 || s.building != nil {
		return
	}
	f := newKeyFilter(s.filterBytes)
	// Pending coins may reach badger after the build's snapshot.
	for _, p := range []*pending{s.pend, s.pend.base} {
		if p == nil {
			continue
		}
		for op, e := range p.coins {
			if e.val != nil {
				f.add(&op)
			}
		}
	}
	s.building = f
	txn := s.db.NewTransaction(false) // after building is set: see keyFilter
	s.filterWG.Add(1)
	go func() {
		defer s.filterWG.Done()
		defer txn.Discard()
		if err := s.fillFilter(txn, f); err != nil {
			if !errors.Is(err, errFilterStopped) {
				s.log.Warn("utxo key filter not built; lookups read badger", "err", err)
			}
			s.cacheMu.Lock()
			s.building = nil
			s.cacheMu.Unlock()
			return
		}
		s.cacheMu.Lock()
		s.filter, s.building = f, nil
		f.built = f.added
		added, capacity := f.added, f.capacity()
		s.cacheMu.Unlock()
		s.log.Info("utxo key filter built", "keys", added, "capacity", capacity)
		if added > capacity {
			s.log.Warn("the UTXO set holds more coins than the key filter holds well; raise --utxostore-filter-mb",
				"keys", added, "capacity", capacity)
		}
	}()
}

// fillFilter adds every coin key of txn's snapshot to f, a batch per hold
// of cacheMu, until done or filterStop closes.
func (s *store) fillFilter(txn *badger.Txn, f *keyFilter) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte{prefixCoin}
	it := txn.NewIterator(opts)
	defer it.Close()
	batch := make([]wire.OutPoint, 0, filterBatch)
	flush := func() {
		s.cacheMu.Lock()
		for i := range batch {
			f.add(&batch[i])
		}
		s.cacheMu.Unlock()
		batch = batch[:0]
	}
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != coinKeyLen {
			continue
		}
		var op wire.OutPoint
		copy(op.Hash[:], k[1:1+chainhash.HashSize])
		op.Index = binary.BigEndian.Uint32(k[1+chainhash.HashSize:])
		if batch = append(batch, op); len(batch) == filterBatch {
			flush()
			select {
			case <-s.filterStop:
				return errFilterStopped
			default:
			}
		}
	}
	flush()
	return nil
}

// errFilterStopped ends a build at close.
var errFilterStopped = errors.New("store closing")

// addToFilters records a coin entering the pending changes in the filter
// in use and the one being built. Once the one in use took as many coins
// since its build as it holds well, most of them spent by now, a rebuild
// starts (unless the set alone outgrew the filter: a rebuild would not
// help). The caller holds cacheMu (for writing).
func (s *store) addToFilters(op *wire.OutPoint) {
	if s.building != nil {
		s.building.add(op)
	}
	if f := s.filter; f != nil {
		f.add(op)
		if f.added-f.built >= f.capacity() && f.built < f.capacity()/2 {
			s.startFilter()
		}
	}
}

// mayHold is false only when badger holds no coin at op: the filter in
// use says so. Since the filter takes every coin entering the pending
// changes, the set then holds no coin at op at all. The caller holds
// cacheMu.
func (s *store) mayHold(op *wire.OutPoint) bool {
	return s.filter == nil || s.filter.mayHold(op)
}
