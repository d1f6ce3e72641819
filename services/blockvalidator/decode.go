package blockvalidator

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/parallel"
)

// decodeBlock parses a serialized block (with witnesses), refusing
// trailing bytes and any encoding other than the canonical one (the wire
// decoder already refuses non-minimal compact sizes and a witness flag
// without witnesses; the size check catches whatever else re-serializes
// differently, so the bytes stored are exactly those the hash and the
// size and weight limits were computed from). It then computes every
// transaction's txid and wtxid (see hashTxs).
//
// A large block's transactions are decoded on every core: txSpans finds
// where each starts, and each is decoded by wire's own decoder from its
// span, which it must consume exactly. A transaction decoded so is the
// one a sequential decode reads at the same offset, so the result is the
// same; whenever the spans are in doubt (anything the sequential decoder
// might refuse, or read differently), the block is decoded sequentially
// instead, and that decoder's verdict stands.
func decodeBlock(raw []byte) (*btcutil.Block, error) {
	mb, ok := decodeParallel(raw)
	if !ok {
		var err error
		if mb, err = decodeSequential(raw); err != nil {
			return nil, err
		}
	}
	if n := mb.SerializeSize(); n != len(raw) {
		return nil, fmt.Errorf("non-canonical block encoding: %d bytes, %d when re-serialized", len(raw), n)
	}
	block := btcutil.NewBlockFromBlockAndBytes(mb, raw)
	hashTxs(block.Transactions())
	return block, nil
}

// decodeSequential decodes raw with wire's block decoder, refusing
// trailing bytes.
func decodeSequential(raw []byte) (*wire.MsgBlock, error) {
	var mb wire.MsgBlock
	r := bytes.NewReader(raw)
	if err := mb.Deserialize(r); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the block", r.Len())
	}
	return &mb, nil
}

// parallelDecodeMin is the fewest transactions a block needs for its
// decoding to be spread over the cores.
const parallelDecodeMin = 256

// decodeParallel decodes raw's transactions on every core from the
// spans txSpans finds; ok is false when it could not do so with
// certainty (the caller then decodes sequentially).
func decodeParallel(raw []byte) (*wire.MsgBlock, bool) {
	// Past wire's block size the sequential decoder has limits of its
	// own (its transaction count bound): let it speak.
	if runtime.GOMAXPROCS(0) < 2 || len(raw) < wire.MaxBlockHeaderPayload+1 || len(raw) > wire.MaxBlockPayload {
		return nil, false
	}
	mb := &wire.MsgBlock{}
	if err := mb.Header.Deserialize(bytes.NewReader(raw[:wire.MaxBlockHeaderPayload])); err != nil {
		return nil, false
	}
	body := raw[wire.MaxBlockHeaderPayload:]
	n, size, ok := compactSize(body)
	if !ok || n < parallelDecodeMin || n > uint64(len(body))/minTxBytes {
		return nil, false
	}
	starts, ok := txSpans(body[size:], int(n))
	if !ok {
		return nil, false
	}
	body = body[size:]
	// Each core decodes a run of transactions as wire decodes a block's
	// (one borrowing of its buffers per run, not per transaction): its
	// spans read behind a made-up header and count.
	txs := make([]*wire.MsgTx, n)
	var failed atomic.Bool
	parallel.Ranges(int(n), parallelDecodeMin/2, func(lo, hi int) {
		prefix := bytes.NewBuffer(make([]byte, wire.MaxBlockHeaderPayload, wire.MaxBlockHeaderPayload+9))
		if wire.WriteVarInt(prefix, 0, uint64(hi-lo)) != nil {
			failed.Store(true)
			return
		}
		run := bytes.NewReader(body[starts[lo]:starts[hi]])
		var part wire.MsgBlock
		if part.Deserialize(io.MultiReader(prefix, run)) != nil || run.Len() != 0 || len(part.Transactions) != hi-lo {
			failed.Store(true)
			return
		}
		copy(txs[lo:hi], part.Transactions)
	})
	if failed.Load() {
		return nil, false
	}
	mb.Transactions = txs
	return mb, true
}

// minTxBytes is the smallest a serialized transaction can be: version,
// one input (outpoint, empty script, sequence), no output, lock time.
const minTxBytes = 4 + 1 + 36 + 1 + 4 + 1 + 4

// txSpans returns where each of n transactions serialized back to back in
// b (witness encoding) starts, and len(b) last, reading only lengths; ok
// is false unless the n transactions end exactly at b's end. It trusts
// nothing it reads: a wrong span only makes a decode of it fail.
func txSpans(b []byte, n int) ([]int, bool) {
	starts := make([]int, 0, n+1)
	off := 0
	skip := func(k uint64) bool {
		if k > uint64(len(b)-off) {
			return false
		}
		off += int(k)
		return true
	}
	count := func() (uint64, bool) {
		v, size, ok := compactSize(b[off:])
		if ok {
			off += size
		}
		return v, ok
	}
	for range n {
		starts = append(starts, off)
		if !skip(4) { // version
			return nil, false
		}
		witness := off+2 <= len(b) && b[off] == 0 && b[off+1] == 1
		if witness {
			off += 2
		}
		nIn, ok := count()
		if !ok || nIn > uint64(len(b)-off)/41 {
			return nil, false
		}
		for range nIn {
			if !skip(36) {
				return nil, false
			}
			l, ok := count()
			if !ok || !skip(l) || !skip(4) {
				return nil, false
			}
		}
		nOut, ok := count()
		if !ok || nOut > uint64(len(b)-off)/9 {
			return nil, false
		}
		for range nOut {
			if !skip(8) {
				return nil, false
			}
			l, ok := count()
			if !ok || !skip(l) {
				return nil, false
			}
		}
		if witness {
			for range nIn {
				items, ok := count()
				if !ok || items > uint64(len(b)-off) {
					return nil, false
				}
				for range items {
					l, ok := count()
					if !ok || !skip(l) {
						return nil, false
					}
				}
			}
		}
		if !skip(4) { // lock time
			return nil, false
		}
	}
	if off != len(b) {
		return nil, false
	}
	return append(starts, off), true
}

// compactSize reads a Bitcoin compact size at the start of b: its value
// and how many bytes it took (ok false when b is too short).
func compactSize(b []byte) (v uint64, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xfd:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case 0xfe:
		if len(b) < 5 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint32(b[1:])), 5, true
	case 0xff:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	}
	return uint64(b[0]), 1, true
}

// hashTxs computes every transaction's txid and wtxid, which btcutil.Tx
// caches, spread over the cores. Every later step needs them, and with
// them computed the block's steps only read it, so they may run at the
// same time (see Service.prepareSteps).
func hashTxs(txs []*btcutil.Tx) {
	parallel.Ranges(len(txs), 128, func(lo, hi int) {
		for _, tx := range txs[lo:hi] {
			tx.HasWitness()
			tx.Hash()
			tx.WitnessHash()
		}
	})
}
