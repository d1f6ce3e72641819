package utxostore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io/fs"
	"path/filepath"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/dgraph-io/badger/v4"

	"github.com/btcmesh/btcmesh/internal/coin"
)

// stats are gettxoutsetinfo's figures.
type stats struct {
	tip            tipState
	transactions   int64
	txouts         int64
	bogosize       int64
	hashSerialized chainhash.Hash
	totalAmount    int64
	diskSize       int64
}

// bogoSize is Core's GetBogoSize for one output: txid 32 + vout 4 +
// height/coinbase 4 + amount 8 + script length 2 + script.
func bogoSize(scriptLen int) int64 { return 32 + 4 + 4 + 8 + 2 + int64(scriptLen) }

// writeCoinSer writes one entry of hash_serialized. The serialization is
// btcmesh's own, modelled on Bitcoin Core's TxOutSer (kernel/coinstats):
//
//	txid (32 bytes, internal order) || vout (uint32 LE) ||
//	uint32 LE (height<<1 | coinbase) ||
//	amount (int64 LE) || compact-size(len(pkScript)) || pkScript
//
// and entries come in key order: txid bytes ascending, then vout ascending.
// That matches Core's hash_serialized_3 layout and order, but it has not
// been checked against bitcoind, so treat the value as btcmesh's own.
func writeCoinSer(h hash.Hash, buf *bytes.Buffer, txid []byte, vout uint32, c coin.Coin) error {
	buf.Reset()
	buf.Write(txid)
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:4], vout)
	buf.Write(b[:4])
	binary.LittleEndian.PutUint32(b[:4], uint32(c.Height)<<1|boolBit(c.Coinbase))
	buf.Write(b[:4])
	binary.LittleEndian.PutUint64(b[:], uint64(c.Amount))
	buf.Write(b[:])
	if err := wire.WriteVarBytes(buf, 0, c.Script); err != nil {
		return err
	}
	_, err := h.Write(buf.Bytes())
	return err
}

func boolBit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// stats scans the whole set in one snapshot, after writing the pending
// changes (the scan reads badger alone).
func (s *store) stats(ctx context.Context) (stats, error) {
	s.lock()
	err := s.flushLocked()
	s.mu.Unlock()
	if err != nil {
		return stats{}, err
	}
	var st stats
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		if st.tip, err = readTip(txn); err != nil {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{prefixCoin}
		it := txn.NewIterator(opts)
		defer it.Close()
		h := sha256.New()
		var buf bytes.Buffer
		var lastTxid []byte
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%65536 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			k := item.Key()
			if len(k) != coinKeyLen {
				return fmt.Errorf("bad coin key %x", k)
			}
			txid := k[1 : 1+chainhash.HashSize]
			vout := binary.BigEndian.Uint32(k[1+chainhash.HashSize:])
			if !bytes.Equal(txid, lastTxid) {
				st.transactions++
				lastTxid = append(lastTxid[:0], txid...)
			}
			if err := item.Value(func(v []byte) error {
				c, _, err := coin.Decode(v)
				if err != nil {
					return fmt.Errorf("coin %x: %w", k, err)
				}
				st.txouts++
				st.totalAmount += c.Amount
				st.bogosize += bogoSize(len(c.Script))
				return writeCoinSer(h, &buf, txid, vout, c)
			}); err != nil {
				return err
			}
		}
		st.hashSerialized = chainhash.Hash(sha256.Sum256(h.Sum(nil)))
		return nil
	})
	if err != nil {
		return stats{}, fmt.Errorf("scan utxo set: %w", err)
	}
	if st.txouts != st.tip.txouts || st.totalAmount != st.tip.amount {
		s.log.Error("utxo counters disagree with the set",
			"counted_txouts", st.txouts, "recorded_txouts", st.tip.txouts,
			"counted_amount", st.totalAmount, "recorded_amount", st.tip.amount)
	}
	st.diskSize = s.diskSize()
	return st, nil
}

// diskSize is the bytes the store's files occupy on disk. It is measured
// from the files rather than taken from badger's Size(): badger preallocates
// value-log and memtable files as sparse files of twice their nominal size
// and Size() reports those apparent sizes (GiBs for a near-empty store).
func (s *store) diskSize() int64 {
	var total int64
	_ = filepath.WalkDir(s.db.Opts().Dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, ierr := d.Info(); ierr == nil {
			total += allocatedBytes(info)
		}
		return nil
	})
	return total
}
