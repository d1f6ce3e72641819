// Package packed reads and writes the compact forms the batch APIs use
// for large requests: outpoints packed 36 bytes each (utxostore's
// GetUtxosRequest.packed_outpoints and TxChanges.spends) and coin records
// packed one after another (GetUtxosResponse.packed_utxos), and outputs
// packed one after another (TxChanges.outputs).
package packed

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// OutPointLen is one packed outpoint: the txid, then the output index as
// 4 little-endian bytes.
const OutPointLen = chainhash.HashSize + 4

// AppendOutPoint appends op's packed form to b.
func AppendOutPoint(b []byte, op wire.OutPoint) []byte {
	b = append(b, op.Hash[:]...)
	return binary.LittleEndian.AppendUint32(b, op.Index)
}

// ReadOutPoints unpacks b's outpoints into dst (which must hold
// len(b)/OutPointLen of them); b must be a whole number of them.
func ReadOutPoints(dst []wire.OutPoint, b []byte) error {
	if len(b)%OutPointLen != 0 {
		return fmt.Errorf("%d bytes is not a whole number of %d-byte outpoints", len(b), OutPointLen)
	}
	for i := range len(b) / OutPointLen {
		p := b[i*OutPointLen:]
		copy(dst[i].Hash[:], p[:chainhash.HashSize])
		dst[i].Index = binary.LittleEndian.Uint32(p[chainhash.HashSize:OutPointLen])
	}
	return nil
}

// AppendRecord appends one record, uvarint(len(v)) || v, to b; an empty v
// is the record of an outpoint that holds no coin.
func AppendRecord(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// NextRecord reads the record at the front of b and returns it (aliasing
// b) and the rest of b.
func NextRecord(b []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errors.New("truncated record")
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// AppendOutput appends out's packed form to b: the amount as 8
// little-endian bytes, uvarint(script length), the script.
func AppendOutput(b []byte, out *wire.TxOut) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(out.Value))
	b = binary.AppendUvarint(b, uint64(len(out.PkScript)))
	return append(b, out.PkScript...)
}

// NextOutput reads the packed output at the front of b into out (its
// script aliasing b) and returns the rest of b.
func NextOutput(b []byte, out *wire.TxOut) (rest []byte, err error) {
	if len(b) < 8 {
		return nil, errors.New("truncated output amount")
	}
	out.Value = int64(binary.LittleEndian.Uint64(b))
	n, k := binary.Uvarint(b[8:])
	if k <= 0 || n > uint64(len(b)-8-k) {
		return nil, errors.New("truncated output script")
	}
	start := 8 + k
	out.PkScript = b[start : start+int(n) : start+int(n)]
	return b[start+int(n):], nil
}
