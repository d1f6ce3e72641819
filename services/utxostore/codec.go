package utxostore

import (
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// Key prefixes and record layout (see the package comment).
const (
	prefixCoin  byte = 'c'
	prefixUndo  byte = 'u'
	keyTipByte  byte = 't'
	keyMetaByte byte = 'm'

	coinKeyLen    = 1 + chainhash.HashSize + 4
	tipRecordLen  = chainhash.HashSize + 4 + 8 + 8
	schemaVersion = 1

	// maxScriptSize is Core's MAX_SCRIPT_SIZE: longer scripts are
	// unspendable and never enter the set.
	maxScriptSize = 10000
	// opReturn marks a provably unspendable output.
	opReturn = 0x6a
)

// coinKey is 'c' || txid || vout (big-endian, so keys sort by vout).
func coinKey(txid *chainhash.Hash, vout uint32) []byte {
	k := make([]byte, coinKeyLen)
	k[0] = prefixCoin
	copy(k[1:], txid[:])
	binary.BigEndian.PutUint32(k[1+chainhash.HashSize:], vout)
	return k
}

// undoKey is 'u' || block hash.
func undoKey(block *chainhash.Hash) []byte {
	k := make([]byte, 1+chainhash.HashSize)
	k[0] = prefixUndo
	copy(k[1:], block[:])
	return k
}

func tipKey() []byte  { return []byte{keyTipByte} }
func metaKey() []byte { return []byte{keyMetaByte} }

// unspendable reports whether an output can never be spent (Core's
// CScript::IsUnspendable), so it is not stored.
func unspendable(script []byte) bool {
	return (len(script) > 0 && script[0] == opReturn) || len(script) > maxScriptSize
}

// tipState is the tip record: the block the set reflects and the set's
// counters at that block.
type tipState struct {
	hash   chainhash.Hash
	height int32
	txouts int64
	amount int64
}

func (t tipState) encode() []byte {
	b := make([]byte, tipRecordLen)
	copy(b, t.hash[:])
	binary.BigEndian.PutUint32(b[32:], uint32(t.height))
	binary.BigEndian.PutUint64(b[36:], uint64(t.txouts))
	binary.BigEndian.PutUint64(b[44:], uint64(t.amount))
	return b
}

func decodeTip(b []byte) (tipState, error) {
	var t tipState
	if len(b) != tipRecordLen {
		return t, fmt.Errorf("tip record is %d bytes, want %d", len(b), tipRecordLen)
	}
	copy(t.hash[:], b)
	t.height = int32(binary.BigEndian.Uint32(b[32:]))
	t.txouts = int64(binary.BigEndian.Uint64(b[36:]))
	t.amount = int64(binary.BigEndian.Uint64(b[44:]))
	return t, nil
}

// encodeMeta is version(1) || genesis hash(32).
func encodeMeta(genesis *chainhash.Hash) []byte {
	b := make([]byte, 1+chainhash.HashSize)
	b[0] = schemaVersion
	copy(b[1:], genesis[:])
	return b
}
