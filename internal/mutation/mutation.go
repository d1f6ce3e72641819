// Package mutation tells whether a block's bytes are the ones its header
// commits to. A relayer can alter a block without touching its header (and
// so its hash and proof of work): change the transactions (the merkle root
// no longer matches), duplicate the last ones (CVE-2012-2459: the root
// still matches), or change or strip witnesses, which the header commits
// to only through the coinbase's witness commitment once segwit is
// active, and not at all before. Such a block says nothing about the
// block its hash names, so it must neither be stored under that hash nor
// mark the hash invalid (Bitcoin Core's BLOCK_MUTATED and IsBlockMutated).
package mutation

import (
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// Rules a mutated block breaks, in Bitcoin Core's words.
const (
	// BadMerkleRoot: the transactions do not hash to the header's root.
	BadMerkleRoot rules.Kind = "bad-txnmrklroot"
	// DuplicateTx: a transaction appears twice (CVE-2012-2459).
	DuplicateTx rules.Kind = "bad-txns-duplicate"
	// UnexpectedWitness: witness data the block does not commit to.
	UnexpectedWitness rules.Kind = "unexpected-witness"
	// BadWitnessNonce: the coinbase's witness is not one 32-byte nonce.
	BadWitnessNonce rules.Kind = "bad-witness-nonce-size"
	// BadWitnessRoot: the witnesses do not hash to the commitment.
	BadWitnessRoot rules.Kind = "bad-witness-merkle-match"
)

// Is reports whether a block rejected by rule kind may be a mutation of a
// valid block with the same hash: its header must then not be marked
// invalid, and its bytes must not be kept.
func Is(kind rules.Kind) bool {
	switch kind {
	case BadMerkleRoot, DuplicateTx, UnexpectedWitness, BadWitnessNonce, BadWitnessRoot:
		return true
	}
	return false
}

// Check fails when block's transactions are not those its header commits
// to: the merkle root, no transaction twice, and the witnesses (see
// CheckWitness). segwitActive says whether segwit's rules apply at the
// block's height. The error is a *rules.RuleError.
func Check(block *btcutil.Block, segwitActive bool) error {
	txs := block.Transactions()
	if len(txs) == 0 {
		return rules.New(BadMerkleRoot, "block has no transactions")
	}
	root := blockchain.CalcMerkleRoot(txs, false)
	if want := block.MsgBlock().Header.MerkleRoot; root != want {
		return rules.New(BadMerkleRoot, "merkle root %s, header says %s", root, want)
	}
	seen := make(map[chainhash.Hash]struct{}, len(txs))
	for _, tx := range txs {
		if _, dup := seen[*tx.Hash()]; dup {
			return rules.New(DuplicateTx, "transaction %s appears twice", tx.Hash())
		}
		seen[*tx.Hash()] = struct{}{}
	}
	return CheckWitness(block, segwitActive)
}

// CheckWitness fails when block carries witness data its header does not
// commit to: with segwit active, the coinbase's witness commitment must
// match every witness (and with no commitment no transaction may carry
// one); before segwit no transaction may carry any. The error is a
// *rules.RuleError.
func CheckWitness(block *btcutil.Block, segwitActive bool) error {
	if segwitActive {
		if len(block.Transactions()) == 0 || len(block.Transactions()[0].MsgTx().TxIn) == 0 {
			return rules.New(BadWitnessNonce, "block has no coinbase input to carry a witness nonce")
		}
		return rules.FromBtcd(blockchain.ValidateWitnessCommitment(block))
	}
	for _, tx := range block.Transactions() {
		if tx.MsgTx().HasWitness() {
			return rules.New(UnexpectedWitness, "transaction %s has witness data before segwit", tx.Hash())
		}
	}
	return nil
}

// CommitmentScript returns the coinbase output script that commits to the
// witnesses of txs (the block's transactions, coinbase first) with nonce,
// the coinbase's witness: OP_RETURN, a 36-byte push of aa21a9ed and
// double-SHA256(witness merkle root || nonce) (BIP141). The coinbase's
// wtxid counts as zero, so the coinbase in txs may lack this output yet.
func CommitmentScript(txs []*btcutil.Tx, nonce []byte) []byte {
	root := blockchain.CalcMerkleRoot(txs, true)
	preimage := append(root[:], nonce...)
	return WitnessCommitmentScript(chainhash.DoubleHashB(preimage))
}

// WitnessCommitmentScript is the coinbase output script carrying a
// 32-byte witness commitment: OP_RETURN, a 36-byte push of aa21a9ed and
// the commitment.
func WitnessCommitmentScript(commitment []byte) []byte {
	out := make([]byte, 0, blockchain.CoinbaseWitnessPkScriptLength)
	out = append(out, blockchain.WitnessMagicBytes...)
	return append(out, commitment...)
}
