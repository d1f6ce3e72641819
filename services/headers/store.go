package headers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/dgraph-io/badger/v4"

	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
)

// Store layout:
//
//	"e" + hash (32 bytes)  -> entry: version(1) | header(80) | height(4) | seq(8) | status(1) | reason
//	"t"                    -> active tip hash (32 bytes)
var (
	entryPrefix = []byte("e")
	tipKey      = []byte("t")
)

const (
	entryVersion   = 1
	headerLen      = wire.MaxBlockHeaderPayload
	entryFixedSize = 1 + headerLen + 4 + 8 + 1
)

func entryKey(h chainhash.Hash) []byte {
	return append(append([]byte(nil), entryPrefix...), h[:]...)
}

func encodeEntry(n *node) []byte {
	b := make([]byte, 0, entryFixedSize+len(n.reason))
	b = append(b, entryVersion)
	b = append(b, n.raw...)
	b = binary.BigEndian.AppendUint32(b, uint32(n.height))
	b = binary.BigEndian.AppendUint64(b, n.seq)
	b = append(b, byte(n.status))
	b = append(b, n.reason...)
	return b
}

// storedEntry is a decoded entry before it is linked into the index.
type storedEntry struct {
	header wire.BlockHeader
	raw    []byte
	height int32
	seq    uint64
	status headersv1.BlockStatus
	reason string
}

func decodeEntry(v []byte) (storedEntry, error) {
	var e storedEntry
	if len(v) < entryFixedSize || v[0] != entryVersion {
		return e, fmt.Errorf("bad entry (%d bytes)", len(v))
	}
	e.raw = append([]byte(nil), v[1:1+headerLen]...)
	if err := e.header.Deserialize(bytes.NewReader(e.raw)); err != nil {
		return e, fmt.Errorf("decode header: %w", err)
	}
	off := 1 + headerLen
	e.height = int32(binary.BigEndian.Uint32(v[off:]))
	e.seq = binary.BigEndian.Uint64(v[off+4:])
	e.status = headersv1.BlockStatus(v[off+12])
	e.reason = string(v[entryFixedSize:])
	return e, nil
}

// putEntries writes entries (and the tip when not nil) in one transaction.
func putEntries(db *badger.DB, nodes []*node, tip *node) error {
	return db.Update(func(txn *badger.Txn) error {
		for _, n := range nodes {
			if err := txn.Set(entryKey(n.hash), encodeEntry(n)); err != nil {
				return fmt.Errorf("write entry %s: %w", n.hash, err)
			}
		}
		if tip != nil {
			if err := txn.Set(tipKey, append([]byte(nil), tip.hash[:]...)); err != nil {
				return fmt.Errorf("write tip: %w", err)
			}
		}
		return nil
	})
}

// Durability. Every write goes to badger's write-ahead log, which badger
// keeps in a memory-mapped file: a write that returned survives the
// process being killed. The log is fsynced (for power loss) at most
// flushDelay after a write, not by each write: the block bytes a
// HAVE_DATA mark vouches for sit in JetStream's file store, which syncs on
// its own interval, so an fsync per mark bought no real guarantee and
// cost milliseconds on every block.
//
// Not every index change is written at once either: the hot path of a
// block (SubmitHeaders of its header, SetBlockStatus HAVE_DATA,
// SetActiveTip with mark_valid) would otherwise make three writes per
// block. Two kinds of change are deferred (kept in deferredWrites) and
// ride along with the next write, with a timer flush flushDelay later, or
// with Close, whichever comes first:
//
//   - a single submitted header (a block's own header, submitted just
//     before the block is stored; its HAVE_DATA write follows within
//     milliseconds and carries it). A header lost in a crash is simply
//     announced again by peers or resubmitted with its block; nothing
//     durable refers to it, because the UTXO store only ever connects
//     blocks whose HAVE_DATA status, written after the header, is in the
//     log.
//   - the active tip and VALID marks (SetActiveTip). The UTXO store's tip
//     is the truth: blockvalidator reconciles at start by marking the
//     UTXO tip valid and active. A VALID mark lost on an earlier block of
//     the active chain leaves it HAVE_DATA, which readers treat alike
//     (connectable, stored, on the active chain).
//
// Writes that are not re-derivable are written before the call returns:
// header batches (headers-first sync), HAVE_DATA (the block is stored;
// the UTXO store may connect it next) and INVALID. Each such write also
// carries everything deferred before it, and badger applies a write
// atomically, so the index in the log is always a prefix of the changes
// made in memory.
const flushDelay = time.Second

// deferredWrites are index changes made in memory and not yet written.
// Guarded by Service.mu (write lock).
type deferredWrites struct {
	nodes    map[chainhash.Hash]*node
	tip      bool // the active tip changed
	unsynced bool // badger's log holds writes not fsynced yet
	timer    *time.Timer
	// syncs counts the timer's fsyncs in flight, which run without
	// Service.mu (their Add is made holding it, while the store is open).
	syncs sync.WaitGroup
}

// deferNodes records that nodes changed in memory; deferTip that the
// active tip did. The caller holds s.mu.
func (s *Service) deferNodes(nodes ...*node) {
	if s.lazy.nodes == nil {
		s.lazy.nodes = make(map[chainhash.Hash]*node)
	}
	for _, n := range nodes {
		s.lazy.nodes[n.hash] = n
	}
	s.armFlush()
}

func (s *Service) deferTip() {
	s.lazy.tip = true
	s.armFlush()
}

// armFlush makes sure deferred changes are written, and the log fsynced,
// within flushDelay even if no other write comes. The fsync runs without
// s.mu: it takes milliseconds (more on a busy disk), which every call
// arriving meanwhile would otherwise wait out (Run waits for it before
// closing the store).
func (s *Service) armFlush() {
	if s.lazy.timer != nil {
		return
	}
	s.lazy.timer = time.AfterFunc(flushDelay, func() {
		s.mu.Lock()
		s.lazy.timer = nil
		if s.db == nil {
			s.mu.Unlock()
			return
		}
		if err := s.persist(nil, nil); err != nil {
			s.mu.Unlock()
			s.log.Error("store deferred index changes failed", "err", err)
			return
		}
		db, unsynced := s.db, s.lazy.unsynced
		s.lazy.unsynced = false
		if unsynced {
			s.lazy.syncs.Add(1)
		}
		s.mu.Unlock()
		if !unsynced {
			return
		}
		defer s.lazy.syncs.Done()
		if err := db.Sync(); err != nil {
			s.log.Error("sync headers store failed", "err", err)
			s.mu.Lock()
			s.lazy.unsynced = true
			if s.db != nil {
				s.armFlush() // try again
			}
			s.mu.Unlock()
		}
	})
}

// syncLog fsyncs badger's log when it holds writes not synced yet. The
// caller holds s.mu.
func (s *Service) syncLog() error {
	if !s.lazy.unsynced {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		s.armFlush() // try again
		return err
	}
	s.lazy.unsynced = false
	return nil
}

// persist writes entries (and the tip when not nil) in one transaction,
// fsynced within flushDelay, together with every deferred change (written
// first, from the nodes' current state, so that the explicit entries win).
// The caller holds s.mu. Deferred changes stay pending when the write
// fails.
func (s *Service) persist(nodes []*node, tip *node) error {
	all := nodes
	if len(s.lazy.nodes) > 0 {
		all = make([]*node, 0, len(s.lazy.nodes)+len(nodes))
		for _, n := range s.lazy.nodes {
			all = append(all, n)
		}
		all = append(all, nodes...)
	}
	if tip == nil && s.lazy.tip && s.idx != nil {
		tip = s.idx.tip()
	}
	if len(all) == 0 && tip == nil {
		return nil
	}
	if err := putEntries(s.db, all, tip); err != nil {
		return err
	}
	clear(s.lazy.nodes)
	s.lazy.tip = false
	s.lazy.unsynced = true
	s.armFlush()
	return nil
}

// flushDeferred writes what is deferred; Run calls it before closing the
// store. The caller holds s.mu.
func (s *Service) flushDeferred() error {
	if s.lazy.timer != nil {
		s.lazy.timer.Stop()
		s.lazy.timer = nil
	}
	if err := s.persist(nil, nil); err != nil {
		return err
	}
	if s.lazy.timer != nil { // armed again by persist: Close syncs now
		s.lazy.timer.Stop()
		s.lazy.timer = nil
	}
	return s.syncLog()
}

// openStore opens the badger database in dir.
func openStore(dir string, log *slog.Logger) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithSyncWrites(false). // see Durability
		WithValueLogFileSize(64 << 20).
		WithMemTableSize(16 << 20).
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open headers store %s: %w", dir, err)
	}
	return db, nil
}

// loadIndex reads every entry and the active tip; an empty store is
// initialised with the genesis block as the valid active tip.
func loadIndex(db *badger.DB, params *chaincfg.Params) (*index, error) {
	x := newIndex(params)
	var entries []storedEntry
	var tipHash *chainhash.Hash
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: entryPrefix, PrefetchValues: true, PrefetchSize: 1000})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var e storedEntry
			if err := item.Value(func(v []byte) error {
				var derr error
				e, derr = decodeEntry(v)
				return derr
			}); err != nil {
				return fmt.Errorf("entry %x: %w", item.Key(), err)
			}
			entries = append(entries, e)
		}
		item, err := txn.Get(tipKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tip: %w", err)
		}
		return item.Value(func(v []byte) error {
			h, err := chainhash.NewHash(v)
			if err != nil {
				return fmt.Errorf("tip: %w", err)
			}
			tipHash = h
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load headers store: %w", err)
	}

	if len(entries) == 0 {
		var buf bytes.Buffer
		if err := params.GenesisBlock.Header.Serialize(&buf); err != nil {
			return nil, fmt.Errorf("serialize genesis header: %w", err)
		}
		g := newNode(params.GenesisBlock.Header, buf.Bytes(), nil, statusValid, 0)
		if err := putEntries(db, []*node{g}, g); err != nil {
			return nil, fmt.Errorf("initialise headers store: %w", err)
		}
		x.add(g)
		x.active = []*node{g}
		x.noteData(g)
		return x, nil
	}

	sort.Slice(entries, func(i, j int) bool {
		if entries[i].height != entries[j].height {
			return entries[i].height < entries[j].height
		}
		return entries[i].seq < entries[j].seq
	})
	loaded := make([]*node, 0, len(entries))
	for _, e := range entries {
		var parent *node
		if e.height == 0 {
			if h := e.header.BlockHash(); !h.IsEqual(params.GenesisHash) {
				return nil, fmt.Errorf("headers store holds genesis %s, network %s wants %s", h, params.Name, params.GenesisHash)
			}
		} else {
			p, ok := x.nodes[e.header.PrevBlock]
			if !ok || p.height != e.height-1 {
				return nil, fmt.Errorf("headers store: entry %s at height %d has no parent", e.header.BlockHash(), e.height)
			}
			parent = p
		}
		n := newNode(e.header, e.raw, parent, e.status, e.seq)
		n.reason = e.reason
		x.add(n)
		loaded = append(loaded, n)
	}
	if _, ok := x.nodes[*params.GenesisHash]; !ok {
		return nil, fmt.Errorf("headers store lacks the %s genesis block", params.Name)
	}
	tip := x.nodes[*params.GenesisHash]
	if tipHash != nil {
		t, ok := x.nodes[*tipHash]
		if !ok {
			return nil, fmt.Errorf("headers store: active tip %s is not in the index", tipHash)
		}
		tip = t
	}
	x.active = setChain(nil, tip)
	for _, n := range x.active {
		x.noteData(n)
	}
	for _, n := range loaded {
		x.noteData(n)
	}
	return x, nil
}

// badgerLogger sends badger's logs to slog (info as debug).
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error("badger", "msg", fmt.Sprintf(f, a...)) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn("badger", "msg", fmt.Sprintf(f, a...)) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug("badger", "msg", fmt.Sprintf(f, a...)) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debug("badger", "msg", fmt.Sprintf(f, a...)) }
