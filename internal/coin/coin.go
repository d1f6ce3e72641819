// Package coin encodes one unspent output with what validation needs of
// it: the utxostore's record of a coin, which is also how GetUtxos packs
// its answers for large batches (GetUtxosResponse.packed_utxos).
//
// A coin is uvarint(height<<1 | coinbase) || uvarint(amount) ||
// uvarint(script length) || script.
package coin

import (
	"encoding/binary"
	"errors"
)

// Coin is one unspent output.
type Coin struct {
	// Height of the block that created it.
	Height int32
	// Coinbase is true for an output of a coinbase transaction.
	Coinbase bool
	// Amount in satoshis.
	Amount int64
	// Script is the output's locking script.
	Script []byte
}

// Append appends c's encoding to b.
func Append(b []byte, c Coin) []byte {
	code := uint64(uint32(c.Height)) << 1
	if c.Coinbase {
		code |= 1
	}
	b = binary.AppendUvarint(b, code)
	b = binary.AppendUvarint(b, uint64(c.Amount))
	b = binary.AppendUvarint(b, uint64(len(c.Script)))
	return append(b, c.Script...)
}

// Decode decodes one coin from the front of b and says how many bytes it
// used. The script aliases b.
func Decode(b []byte) (Coin, int, error) {
	var c Coin
	code, n := binary.Uvarint(b)
	if n <= 0 {
		return c, 0, errors.New("coin: bad height code")
	}
	off := n
	amount, n := binary.Uvarint(b[off:])
	if n <= 0 {
		return c, 0, errors.New("coin: bad amount")
	}
	off += n
	slen, n := binary.Uvarint(b[off:])
	if n <= 0 || slen > uint64(len(b)-off-n) {
		return c, 0, errors.New("coin: bad script length")
	}
	off += n
	c.Height = int32(uint32(code >> 1))
	c.Coinbase = code&1 == 1
	c.Amount = int64(amount)
	c.Script = b[off : off+int(slen)]
	return c, off + int(slen), nil
}
