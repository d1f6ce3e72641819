package miner

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/mutation"
)

// blockVersion signals BIP9 version bits with no deployment set.
const blockVersion = 0x20000000

// tipInfo is what a template needs to know of the block it builds on.
type tipInfo struct {
	hash   chainhash.Hash
	height int32
	mtp    int64
	bits   uint32
}

// template is an unsolved block and what it was built from.
type template struct {
	block  *wire.MsgBlock
	height int32
	fees   int64
	// segwit tells whether the coinbase carries a witness commitment.
	segwit bool
}

// coinbaseScript is BIP34's height push followed by the extranonce.
func coinbaseScript(height int32, extraNonce uint64) ([]byte, error) {
	var en [8]byte
	binary.LittleEndian.PutUint64(en[:], extraNonce)
	return txscript.NewScriptBuilder().AddInt64(int64(height)).AddData(en[:]).Script()
}

// newCoinbase builds the coinbase paying value to pkScript. With segwit it
// carries a 32-byte zero witness nonce and a zero placeholder commitment
// that setWitnessCommitment fills in once the block's transactions are known.
func newCoinbase(height int32, extraNonce uint64, pkScript []byte, value int64, segwit bool) (*wire.MsgTx, error) {
	sig, err := coinbaseScript(height, extraNonce)
	if err != nil {
		return nil, fmt.Errorf("coinbase script: %w", err)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	in := wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), sig, nil)
	in.Sequence = wire.MaxTxInSequenceNum
	if segwit {
		in.Witness = wire.TxWitness{make([]byte, blockchain.CoinbaseWitnessDataLen)}
	}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(value, pkScript))
	if segwit {
		tx.AddTxOut(wire.NewTxOut(0, mutation.WitnessCommitmentScript(make([]byte, chainhash.HashSize))))
	}
	return tx, nil
}

// setWitnessCommitment computes the witness commitment of block's
// transactions (coinbase first, its wtxid counted as zero) and writes it
// into the coinbase's last output.
func setWitnessCommitment(block *wire.MsgBlock) {
	txs := make([]*btcutil.Tx, len(block.Transactions))
	for i, tx := range block.Transactions {
		txs[i] = btcutil.NewTx(tx)
	}
	cb := block.Transactions[0]
	cb.TxOut[len(cb.TxOut)-1].PkScript = mutation.CommitmentScript(txs, cb.TxIn[0].Witness[0])
}

// setExtraNonce rewrites the coinbase's extranonce and the header's merkle
// root. The witness commitment does not change (the coinbase's wtxid counts
// as zero).
func setExtraNonce(block *wire.MsgBlock, height int32, extraNonce uint64) error {
	sig, err := coinbaseScript(height, extraNonce)
	if err != nil {
		return err
	}
	block.Transactions[0].TxIn[0].SignatureScript = sig
	block.Header.MerkleRoot = merkleRoot(block)
	return nil
}

func merkleRoot(block *wire.MsgBlock) chainhash.Hash {
	txs := make([]*btcutil.Tx, len(block.Transactions))
	for i, tx := range block.Transactions {
		txs[i] = btcutil.NewTx(tx)
	}
	return blockchain.CalcMerkleRoot(txs, false)
}

// assembleBlock puts a block together on tip: coinbase (subsidy plus fees
// to pkScript, witness commitment when segwit), the selected transactions
// in order, merkle root, timestamp max(now, MTP+1), and bits.
func assembleBlock(params *chaincfg.Params, tip tipInfo, bits uint32, segwit bool, pkScript []byte,
	extraNonce uint64, txs []*wire.MsgTx, fees int64, now time.Time) (*template, error) {
	height := tip.height + 1
	cb, err := newCoinbase(height, extraNonce, pkScript, blockchain.CalcBlockSubsidy(height, params)+fees, segwit)
	if err != nil {
		return nil, err
	}
	block := &wire.MsgBlock{Transactions: append([]*wire.MsgTx{cb}, txs...)}
	if segwit {
		setWitnessCommitment(block)
	}
	ts := max(now.Unix(), tip.mtp+1)
	block.Header = wire.BlockHeader{
		Version:    blockVersion,
		PrevBlock:  tip.hash,
		MerkleRoot: merkleRoot(block),
		Timestamp:  time.Unix(ts, 0),
		Bits:       bits,
	}
	return &template{block: block, height: height, fees: fees, segwit: segwit}, nil
}
