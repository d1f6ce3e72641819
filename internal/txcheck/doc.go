// Package txcheck holds the consensus checks of one transaction other than
// its scripts, shared by txvalidator's MODE_FULL engine and blockvalidator's
// in-process checks for script-cached blocks, so that both apply the same
// checks in the same order and name the same rules: context-free sanity,
// the coinbase refusal, finality (locktime), BIP68 sequence locks, input
// amounts and fee (CheckTransactionInputs over a UtxoViewpoint) and the
// sigop cost. It knows nothing of protos or metrics: callers convert their
// requests into Prevout and Context and their results back.
package txcheck
