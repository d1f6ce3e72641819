package txcheck

import (
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// CoinbaseJob is the rule a coinbase transaction breaks when it is checked
// as an ordinary transaction: coinbases are checked by the block path itself.
const CoinbaseJob rules.Kind = "bad-txns-coinbase"

// Prevout is what the checks need to know about one spent output.
type Prevout struct {
	// Output is the spent amount and script; nil is a missing input.
	Output *wire.TxOut
	// Height of the block that created it.
	Height int32
	// Coinbase is true for a coinbase output.
	Coinbase bool
	// MedianTimePast of the block before the one that created it, for
	// BIP68 time-based relative locks.
	MedianTimePast int64
}

// Context is the block the transaction is checked for.
type Context struct {
	// Height of the block that would contain the transaction.
	Height int32
	// MedianTimePast of that block's parent.
	MedianTimePast int64
	// BlockTime is that block's timestamp (the locktime cutoff before CSV).
	BlockTime int64
}

// Result is what the contextual checks compute, filled as far as they got.
type Result struct {
	// Fee is set once CheckTransactionInputs passed.
	Fee int64
	// SigopCost is set once the sigop cost was computed, also when it is
	// over the block limit.
	SigopCost int64
}

// Sanity runs the context-free checks: CheckTransactionSanity, then
// NotCoinbase.
func Sanity(utx *btcutil.Tx) error {
	if err := blockchain.CheckTransactionSanity(utx); err != nil {
		return err
	}
	return NotCoinbase(utx.MsgTx())
}

// NotCoinbase rejects a coinbase transaction with CoinbaseJob.
func NotCoinbase(tx *wire.MsgTx) error {
	if blockchain.IsCoinBaseTx(tx) {
		return rules.New(CoinbaseJob, "coinbase must not be submitted as a job")
	}
	return nil
}

// Contextual runs, in Bitcoin Core's order, the checks that need the chain
// and the spent outputs: finality, BIP68 sequence locks (once CSV is
// active), input amounts and fee, and the sigop cost against the block
// limit. prevouts has one entry per input, in input order.
func Contextual(utx *btcutil.Tx, prevouts []Prevout, cc Context, net chain.Network) (Result, error) {
	var r Result
	tx := utx.MsgTx()
	if len(prevouts) != len(tx.TxIn) {
		return r, rules.New(rules.MissingInputs, "%d prevouts for %d inputs", len(prevouts), len(tx.TxIn))
	}
	csv := net.CSVActive(cc.Height)
	cutoff := time.Unix(cc.BlockTime, 0)
	if csv {
		cutoff = time.Unix(cc.MedianTimePast, 0)
	}
	if !blockchain.IsFinalizedTransaction(utx, cc.Height, cutoff) {
		return r, rules.New(rules.NonFinal, "locktime %d not reached at height %d, time %d",
			tx.LockTime, cc.Height, cutoff.Unix())
	}
	if csv {
		if err := SequenceLocks(tx, prevouts, cc.Height, cc.MedianTimePast); err != nil {
			return r, err
		}
	}
	view := blockchain.NewUtxoViewpoint()
	entries := view.Entries()
	for i, in := range tx.TxIn {
		p := &prevouts[i]
		if p.Output == nil {
			return r, rules.New(rules.MissingInputs, "prevout %d has no output", i)
		}
		entries[in.PreviousOutPoint] = blockchain.NewUtxoEntry(p.Output, p.Height, p.Coinbase)
	}
	fee, err := blockchain.CheckTransactionInputs(utx, cc.Height, view, net.Params)
	if err != nil {
		return r, err
	}
	r.Fee = fee
	sigops, err := blockchain.GetSigOpCost(utx, false, view, true, net.SegwitActive(cc.Height))
	if err != nil {
		return r, err
	}
	r.SigopCost = int64(sigops)
	if sigops > blockchain.MaxBlockSigOpsCost {
		return r, rules.New(rules.BadBlockSigops, "transaction sigop cost %d exceeds the block limit %d",
			sigops, blockchain.MaxBlockSigOpsCost)
	}
	return r, nil
}

// SequenceLocks applies BIP68 relative locks as Bitcoin Core's
// CalculateSequenceLocks and EvaluateSequenceLocks do, for a transaction
// in a block at height whose parent has median time past mtp.
func SequenceLocks(tx *wire.MsgTx, prevouts []Prevout, height int32, mtp int64) error {
	if uint32(tx.Version) < 2 {
		return nil
	}
	minHeight, minTime := int64(-1), int64(-1)
	heightInput, timeInput := -1, -1
	for i, in := range tx.TxIn {
		seq := in.Sequence
		if seq&wire.SequenceLockTimeDisabled != 0 {
			continue
		}
		lock := int64(seq & wire.SequenceLockTimeMask)
		if seq&wire.SequenceLockTimeIsSeconds != 0 {
			t := prevouts[i].MedianTimePast + lock<<wire.SequenceLockTimeGranularity - 1
			if t > minTime {
				minTime, timeInput = t, i
			}
		} else {
			h := int64(prevouts[i].Height) + lock - 1
			if h > minHeight {
				minHeight, heightInput = h, i
			}
		}
	}
	if minHeight >= int64(height) {
		return rules.New(rules.NonBIP68Final, "input %d: relative lock until height %d, block height %d",
			heightInput, minHeight+1, height)
	}
	if minTime >= mtp {
		return rules.New(rules.NonBIP68Final, "input %d: relative lock until time %d, median time past %d",
			timeInput, minTime+1, mtp)
	}
	return nil
}

// Rejection names the rule err breaks and its detail, as the validators
// answer it: btcd's errors are mapped to Core's rule names, and an error
// that is no rule violation is "internal-error" with its whole text.
func Rejection(err error) (rules.Kind, string) {
	err = rules.FromBtcd(err)
	kind, ok := rules.KindOf(err)
	if !ok {
		kind = "internal-error"
	}
	detail := err.Error()
	if re, isRule := err.(*rules.RuleError); isRule {
		detail = re.Detail
	}
	return kind, detail
}
