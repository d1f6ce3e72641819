package blockvalidator

import (
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/mutation"
	"github.com/btcmesh/btcmesh/internal/rules"
)

const (
	// badBlockWeight is Core's name for an overweight block.
	badBlockWeight rules.Kind = "bad-blk-weight"
	// bip34ImpliesBIP30Limit is the first height at which a coinbase could
	// repeat an early (pre-BIP34) coinbase's height commitment, so BIP30 is
	// enforced again from there (Core's BIP34_IMPLIES_BIP30_LIMIT).
	bip34ImpliesBIP30Limit = 1983702
)

// checkContextual runs the block checks that need the block's height and
// parent but no UTXOs (Core's ContextualCheckBlock): BIP34 coinbase
// height, transaction finality, witness commitment (or no witness before
// segwit; skipped when witnessChecked says the caller's
// mutation.CheckWitness passed) and block weight. It returns a
// *rules.RuleError; a witness failure is a mutation (mutation.Is).
func checkContextual(block *btcutil.Block, height int32, parentMTP int64, net chain.Network, witnessChecked bool) error {
	txs := block.Transactions()
	if len(txs) == 0 {
		return rules.New("bad-blk-length", "block has no transactions")
	}
	if height >= net.Params.BIP0034Height {
		if err := blockchain.CheckSerializedHeight(txs[0], height); err != nil {
			return rules.FromBtcd(err)
		}
	}
	cutoff := block.MsgBlock().Header.Timestamp
	if net.CSVActive(height) {
		// BIP113: locktimes compare against the parent's median time past.
		cutoff = time.Unix(parentMTP, 0)
	}
	for _, tx := range txs {
		if !blockchain.IsFinalizedTransaction(tx, height, cutoff) {
			return rules.New(rules.NonFinal, "transaction %s is not final at height %d (lock time %d)",
				tx.Hash(), height, tx.MsgTx().LockTime)
		}
	}
	if !witnessChecked {
		if err := mutation.CheckWitness(block, net.SegwitActive(height)); err != nil {
			return err
		}
	}
	if w := blockchain.GetBlockWeight(block); w > blockchain.MaxBlockWeight {
		return rules.New(badBlockWeight, "block weight %d is over %d", w, blockchain.MaxBlockWeight)
	}
	return nil
}

// inputRef says where one input's spent output comes from: an earlier
// transaction of the same block (local) or the UTXO set (external, at
// index ext of the lookup list).
type inputRef struct {
	local    bool
	ext      int
	out      *wire.TxOut
	coinbase bool
}

// resolveInputs finds, for every input of every non-coinbase transaction,
// whether it spends an output created earlier in the same block or one to
// look up in the UTXO set. Spending an output twice within the block, or an
// output of a later transaction of the block, fails with MissingInputs (the
// latter because the lookup will not find it).
func resolveInputs(txs []*btcutil.Tx) ([][]inputRef, []wire.OutPoint, int, error) {
	type created struct {
		out      *wire.TxOut
		coinbase bool
	}
	nIn, nOut := 0, 0
	for i, tx := range txs {
		if i > 0 {
			nIn += len(tx.MsgTx().TxIn)
		}
		nOut += len(tx.MsgTx().TxOut)
	}
	// Sized up front: growing maps this big costs more than filling them.
	local := make(map[wire.OutPoint]created, nOut)
	spent := make(map[wire.OutPoint]struct{}, nIn)
	refs := make([][]inputRef, len(txs))
	all := make([]inputRef, nIn)
	external := make([]wire.OutPoint, 0, nIn)
	inputs := 0
	for i, tx := range txs {
		msg := tx.MsgTx()
		if i > 0 {
			refs[i], all = all[:len(msg.TxIn):len(msg.TxIn)], all[len(msg.TxIn):]
			for j, in := range msg.TxIn {
				op := in.PreviousOutPoint
				if _, dup := spent[op]; dup {
					return nil, nil, 0, rules.New(rules.MissingInputs,
						"transaction %s input %d spends %s, already spent in this block", tx.Hash(), j, op)
				}
				spent[op] = struct{}{}
				inputs++
				if c, ok := local[op]; ok {
					refs[i][j] = inputRef{local: true, ext: -1, out: c.out, coinbase: c.coinbase}
					continue
				}
				refs[i][j] = inputRef{ext: len(external)}
				external = append(external, op)
			}
		}
		hash := *tx.Hash()
		for k, out := range msg.TxOut {
			local[wire.OutPoint{Hash: hash, Index: uint32(k)}] = created{out: out, coinbase: i == 0}
		}
	}
	return refs, external, inputs, nil
}

// bip30MaySkip reports whether a block at height may skip the check for
// transactions that overwrite unspent outputs (BIP30), provided the chain's
// block at BIP0034Height is params.BIP0034Hash. Once BIP34 is active every
// coinbase commits to its height, so its txid (and so every descendant
// txid) is unique; Core and btcd skip the check only when BIP34's
// activation block is the known one (so never on networks without a
// BIP0034Hash: regtest, signet, testnet4) and only below the height where
// an old coinbase's script could read as a BIP34 height.
func bip30MaySkip(height int32, params *chaincfg.Params) bool {
	return params.BIP0034Hash != nil && params.BIP0034Height < height && height < bip34ImpliesBIP30Limit
}

// bip30Exception reports whether the block is one of the two mainnet
// blocks that overwrote earlier coinbases before BIP30.
func bip30Exception(height int32, hash chainhash.Hash, params *chaincfg.Params) bool {
	if params.Net != wire.MainNet {
		return false
	}
	exceptions := map[int32]string{
		91842: "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec",
		91880: "00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721",
	}
	want, ok := exceptions[height]
	return ok && hash.String() == want
}

// bip30Outpoints lists every output the block's transactions create, to
// look up for BIP30.
func bip30Outpoints(txs []*btcutil.Tx) []wire.OutPoint {
	var ops []wire.OutPoint
	for _, tx := range txs {
		hash := *tx.Hash()
		for k := range tx.MsgTx().TxOut {
			ops = append(ops, wire.OutPoint{Hash: hash, Index: uint32(k)})
		}
	}
	return ops
}

// checkCoinbaseAmount fails with bad-cb-amount when the coinbase pays
// more than the subsidy at height plus the block's fees.
func checkCoinbaseAmount(coinbase *btcutil.Tx, height int32, fees int64, params *chaincfg.Params) error {
	var total int64
	for _, out := range coinbase.MsgTx().TxOut {
		total += out.Value
	}
	limit := blockchain.CalcBlockSubsidy(height, params) + fees
	if total > limit {
		return rules.New(rules.BadCoinbaseAmount, "coinbase pays %d, more than subsidy plus fees %d", total, limit)
	}
	return nil
}

// checkSigOpCost fails with bad-blk-sigops when the block's total sigop
// cost is over the limit.
func checkSigOpCost(total int64) error {
	if total > blockchain.MaxBlockSigOpsCost {
		return rules.New(rules.BadBlockSigops, "block sigop cost %d is over %d", total, blockchain.MaxBlockSigOpsCost)
	}
	return nil
}
