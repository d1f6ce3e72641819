package ctl

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// decodeTx parses a serialized transaction (with or without witnesses).
func decodeTx(raw []byte) (*wire.MsgTx, error) {
	var tx wire.MsgTx
	r := bytes.NewReader(raw)
	if err := tx.Deserialize(r); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return &tx, nil
}

// decodeBlock parses a serialized block.
func decodeBlock(raw []byte) (*wire.MsgBlock, error) {
	var blk wire.MsgBlock
	r := bytes.NewReader(raw)
	if err := blk.Deserialize(r); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return &blk, nil
}

// txWeight is the BIP141 weight of a transaction.
func txWeight(tx *wire.MsgTx) int {
	return tx.SerializeSizeStripped()*3 + tx.SerializeSize()
}

// txJSON is Core's TxToUniv (decoderawtransaction's shape): txid, hash,
// version, size, vsize, weight, locktime, vin, vout, and hex when asked.
func txJSON(tx *wire.MsgTx, params *chaincfg.Params, withHex bool) object {
	weight := txWeight(tx)
	var o object
	txid := tx.TxHash()
	o.add("txid", txid.String())
	wtxid := tx.WitnessHash()
	o.add("hash", wtxid.String())
	o.add("version", int64(tx.Version))
	o.add("size", tx.SerializeSize())
	o.add("vsize", (weight+3)/4)
	o.add("weight", weight)
	o.add("locktime", tx.LockTime)

	vin := make([]any, 0, len(tx.TxIn))
	coinbase := isCoinbase(tx)
	for _, in := range tx.TxIn {
		var i object
		if coinbase {
			i.add("coinbase", hex.EncodeToString(in.SignatureScript))
		} else {
			i.add("txid", in.PreviousOutPoint.Hash.String())
			i.add("vout", in.PreviousOutPoint.Index)
			var ss object
			ss.add("asm", scriptAsm(in.SignatureScript, true))
			ss.add("hex", hex.EncodeToString(in.SignatureScript))
			i.add("scriptSig", ss)
		}
		if len(in.Witness) > 0 {
			w := make([]string, len(in.Witness))
			for j, item := range in.Witness {
				w[j] = hex.EncodeToString(item)
			}
			i.add("txinwitness", w)
		}
		i.add("sequence", in.Sequence)
		vin = append(vin, i)
	}
	o.add("vin", vin)

	vout := make([]any, 0, len(tx.TxOut))
	for n, out := range tx.TxOut {
		var v object
		v.add("value", btc(out.Value))
		v.add("n", n)
		v.add("scriptPubKey", scriptPubKeyJSON(out.PkScript, params))
		vout = append(vout, v)
	}
	o.add("vout", vout)
	if withHex {
		var buf bytes.Buffer
		_ = tx.Serialize(&buf)
		o.add("hex", hex.EncodeToString(buf.Bytes()))
	}
	return o
}

// isCoinbase reports whether tx is a coinbase (one input spending the null
// outpoint).
func isCoinbase(tx *wire.MsgTx) bool {
	if len(tx.TxIn) != 1 {
		return false
	}
	prev := tx.TxIn[0].PreviousOutPoint
	return prev.Index == wire.MaxPrevOutIndex && prev.Hash == chainhash.Hash{}
}

// difficulty is Core's GetDifficulty for compact bits.
func difficulty(bits uint32) float64 {
	shift := (bits >> 24) & 0xff
	mant := bits & 0x00ffffff
	if mant == 0 {
		return 0
	}
	d := float64(0x0000ffff) / float64(mant)
	for ; shift < 29; shift++ {
		d *= 256.0
	}
	for ; shift > 29; shift-- {
		d /= 256.0
	}
	return d
}

// chainWorkHex renders big-endian cumulative work as 64 hex digits.
func chainWorkHex(work []byte) string {
	return fmt.Sprintf("%064x", new(big.Int).SetBytes(work))
}

// blockMeta is what the block index adds to a header in Core's output.
type blockMeta struct {
	height        int32
	confirmations int64
	medianTime    int64
	chainWork     []byte
	nTx           int
	nextHash      []byte
}

// headerJSON is Core's blockheaderToJSON.
func headerJSON(h *wire.BlockHeader, m blockMeta) object {
	var o object
	hash := h.BlockHash()
	o.add("hash", hash.String())
	o.add("confirmations", m.confirmations)
	o.add("height", m.height)
	o.add("version", h.Version)
	o.add("versionHex", fmt.Sprintf("%08x", uint32(h.Version)))
	o.add("merkleroot", h.MerkleRoot.String())
	o.add("time", h.Timestamp.Unix())
	o.add("mediantime", m.medianTime)
	o.add("nonce", h.Nonce)
	o.add("bits", fmt.Sprintf("%08x", h.Bits))
	o.add("difficulty", difficulty(h.Bits))
	o.add("chainwork", chainWorkHex(m.chainWork))
	o.add("nTx", m.nTx)
	if h.PrevBlock != (chainhash.Hash{}) {
		o.add("previousblockhash", h.PrevBlock.String())
	}
	if len(m.nextHash) == chainhash.HashSize {
		o.add("nextblockhash", hashString(m.nextHash))
	}
	return o
}

// blockJSON is Core's blockToJSON for verbosity 1 (txids) or 2 (decoded
// transactions with hex).
func blockJSON(blk *wire.MsgBlock, m blockMeta, verbosity int, params *chaincfg.Params) object {
	m.nTx = len(blk.Transactions)
	o := headerJSON(&blk.Header, m)
	stripped := blk.SerializeSizeStripped()
	size := blk.SerializeSize()
	o.add("strippedsize", stripped)
	o.add("size", size)
	o.add("weight", stripped*3+size)
	txs := make([]any, 0, len(blk.Transactions))
	for _, tx := range blk.Transactions {
		if verbosity >= 2 {
			txs = append(txs, txJSON(tx, params, true))
		} else {
			txs = append(txs, tx.TxHash().String())
		}
	}
	o.add("tx", txs)
	return o
}

// hashString renders 32 internal-order bytes as Core's reversed hex; other
// lengths render as plain hex.
func hashString(b []byte) string {
	h, err := chainhash.NewHash(b)
	if err != nil {
		return hex.EncodeToString(b)
	}
	return h.String()
}
