package utxostore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/dgraph-io/badger/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// store is the badger-backed UTXO set. Readers use badger snapshots;
// writers (connect/disconnect) are serialised by mu.
type store struct {
	db  *badger.DB
	log *slog.Logger
	mu  sync.Mutex
}

// storeOptions are what openStore needs from Config.
type storeOptions struct {
	dir        string
	cacheMB    int
	memTableMB int
	syncWrites bool
	genesis    chainhash.Hash
}

// openStore opens (or creates) the set at o.dir. A new store starts at the
// genesis block with an empty set.
func openStore(o storeOptions, log *slog.Logger) (*store, error) {
	opts := badger.DefaultOptions(o.dir).
		WithLogger(badgerLogger{log: log}).
		WithSyncWrites(o.syncWrites).
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
	s := &store{db: db, log: log}
	if err := s.init(&o.genesis); err != nil {
		_ = db.Close()
		return nil, err
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

func (s *store) close() error { return s.db.Close() }

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
	var t tipState
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		t, err = readTip(txn)
		return err
	})
	return t, err
}

// isCoinbase reports whether tx has the coinbase shape (one input with a
// null previous outpoint).
func isCoinbase(tx *wire.MsgTx) bool {
	if len(tx.TxIn) != 1 {
		return false
	}
	p := tx.TxIn[0].PreviousOutPoint
	return p.Index == wire.MaxPrevOutIndex && p.Hash == (chainhash.Hash{})
}

// notTip is the rule a block breaks when it does not extend the tip.
const notTip rules.Kind = "prev-blk-not-best"

// connectResult summarises one connected block.
type connectResult struct {
	tip     tipState
	spent   int
	created int
}

// connect applies blk at height in one badger transaction.
func (s *store) connect(blk *wire.MsgBlock, height int32) (connectResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash := blk.BlockHash()
	var res connectResult
	err := s.db.Update(func(txn *badger.Txn) error {
		tip, err := readTip(txn)
		if err != nil {
			return err
		}
		if blk.Header.PrevBlock != tip.hash || height != tip.height+1 {
			return rules.New(notTip, "block %s at height %d has parent %s, but the tip is %s at height %d",
				hash, height, blk.Header.PrevBlock, tip.hash, tip.height)
		}
		var spentCoins []byte
		nSpent := 0
		for i, tx := range blk.Transactions {
			txid := tx.TxHash()
			cb := i == 0 && isCoinbase(tx)
			if !cb {
				for j, in := range tx.TxIn {
					op := in.PreviousOutPoint
					k := coinKey(&op.Hash, op.Index)
					item, err := txn.Get(k)
					if errors.Is(err, badger.ErrKeyNotFound) {
						return rules.New(rules.MissingInputs, "tx %s input %d spends %s:%d, which does not exist or is spent",
							txid, j, op.Hash, op.Index)
					}
					if err != nil {
						return fmt.Errorf("read %s:%d: %w", op.Hash, op.Index, err)
					}
					if err := item.Value(func(v []byte) error {
						c, _, derr := decodeCoin(v)
						if derr != nil {
							return fmt.Errorf("coin %s:%d: %w", op.Hash, op.Index, derr)
						}
						tip.txouts--
						tip.amount -= c.amount
						spentCoins = append(spentCoins, v...)
						return nil
					}); err != nil {
						return err
					}
					if err := txn.Delete(k); err != nil {
						return txnErr(err)
					}
					nSpent++
				}
			}
			for vout, out := range tx.TxOut {
				if unspendable(out.PkScript) {
					continue
				}
				k := coinKey(&txid, uint32(vout))
				// A duplicate txid (pre-BIP34 mainnet, blocks 91842 and
				// 91880) overwrites the old output, as in Core.
				if old, found, err := getCoin(txn, k); err != nil {
					return err
				} else if found {
					s.log.Warn("output overwritten", "txid", txid.String(), "vout", vout, "height", height)
					tip.txouts--
					tip.amount -= old.amount
				}
				v := appendCoin(make([]byte, 0, 12+len(out.PkScript)),
					coin{height: height, coinbase: cb, amount: out.Value, script: out.PkScript})
				if err := txn.Set(k, v); err != nil {
					return txnErr(err)
				}
				tip.txouts++
				tip.amount += out.Value
				res.created++
			}
		}
		undo := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(spentCoins)), uint64(nSpent))
		undo = append(undo, spentCoins...)
		if err := txn.Set(undoKey(&hash), undo); err != nil {
			return txnErr(err)
		}
		tip.hash, tip.height = hash, height
		if err := txn.Set(tipKey(), tip.encode()); err != nil {
			return txnErr(err)
		}
		res.tip, res.spent = tip, nSpent
		return nil
	})
	if err != nil {
		return connectResult{}, err
	}
	return res, nil
}

// disconnect undoes blk, which must be the tip, in one badger transaction.
func (s *store) disconnect(blk *wire.MsgBlock) (tipState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hash := blk.BlockHash()
	var newTip tipState
	err := s.db.Update(func(txn *badger.Txn) error {
		tip, err := readTip(txn)
		if err != nil {
			return err
		}
		if hash != tip.hash {
			return status.Errorf(codes.FailedPrecondition, "block %s is not the tip %s (height %d)", hash, tip.hash, tip.height)
		}
		if tip.height == 0 {
			return status.Errorf(codes.FailedPrecondition, "cannot disconnect the genesis block %s", hash)
		}
		item, err := txn.Get(undoKey(&hash))
		if err != nil {
			return fmt.Errorf("read undo data of %s: %w", hash, err)
		}
		undo, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read undo data of %s: %w", hash, err)
		}
		spent, err := splitUndo(undo)
		if err != nil {
			return fmt.Errorf("undo data of %s: %w", hash, err)
		}
		want := 0
		for i, tx := range blk.Transactions {
			if !(i == 0 && isCoinbase(tx)) {
				want += len(tx.TxIn)
			}
		}
		if want != len(spent) {
			return fmt.Errorf("undo data of %s holds %d coins, the block spends %d", hash, len(spent), want)
		}
		next := len(spent)
		for i := len(blk.Transactions) - 1; i >= 0; i-- {
			tx := blk.Transactions[i]
			txid := tx.TxHash()
			for vout := len(tx.TxOut) - 1; vout >= 0; vout-- {
				if unspendable(tx.TxOut[vout].PkScript) {
					continue
				}
				k := coinKey(&txid, uint32(vout))
				old, found, err := getCoin(txn, k)
				if err != nil {
					return err
				}
				if !found {
					s.log.Warn("disconnect: output already missing", "txid", txid.String(), "vout", vout)
					continue
				}
				tip.txouts--
				tip.amount -= old.amount
				if err := txn.Delete(k); err != nil {
					return txnErr(err)
				}
			}
			if i == 0 && isCoinbase(tx) {
				continue
			}
			for j := len(tx.TxIn) - 1; j >= 0; j-- {
				next--
				op := tx.TxIn[j].PreviousOutPoint
				k := coinKey(&op.Hash, op.Index)
				c, _, err := decodeCoin(spent[next])
				if err != nil {
					return fmt.Errorf("undo data of %s: %w", hash, err)
				}
				if old, found, err := getCoin(txn, k); err != nil {
					return err
				} else if found {
					s.log.Warn("disconnect: restored output already present", "txid", op.Hash.String(), "vout", op.Index)
					tip.txouts--
					tip.amount -= old.amount
				}
				if err := txn.Set(k, spent[next]); err != nil {
					return txnErr(err)
				}
				tip.txouts++
				tip.amount += c.amount
			}
		}
		if err := txn.Delete(undoKey(&hash)); err != nil {
			return txnErr(err)
		}
		tip.hash, tip.height = blk.Header.PrevBlock, tip.height-1
		if err := txn.Set(tipKey(), tip.encode()); err != nil {
			return txnErr(err)
		}
		newTip = tip
		return nil
	})
	return newTip, err
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
		_, size, err := decodeCoin(b)
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
func getCoin(txn *badger.Txn, k []byte) (coin, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return coin{}, false, nil
	}
	if err != nil {
		return coin{}, false, fmt.Errorf("read coin: %w", err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return coin{}, false, fmt.Errorf("read coin: %w", err)
	}
	c, _, err := decodeCoin(v)
	if err != nil {
		return coin{}, false, err
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
	coin  coin
}

// lookupMany reads many outpoints and the tip from one snapshot.
func (s *store) lookupMany(ops []wire.OutPoint) ([]lookup, tipState, error) {
	out := make([]lookup, len(ops))
	var tip tipState
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if tip, err = readTip(txn); err != nil {
			return err
		}
		for i := range ops {
			c, found, err := getCoin(txn, coinKey(&ops[i].Hash, ops[i].Index))
			if err != nil {
				return fmt.Errorf("outpoint %s:%d: %w", ops[i].Hash, ops[i].Index, err)
			}
			out[i] = lookup{found: found, coin: c}
		}
		return nil
	})
	return out, tip, err
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
