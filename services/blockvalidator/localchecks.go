package blockvalidator

import (
	"github.com/btcsuite/btcd/btcutil/v2"

	"github.com/btcmesh/btcmesh/internal/parallel"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

// localChecks runs, in this process, what remains of txvalidator's
// MODE_FULL checks for transactions whose scripts the script cache covers:
// a few library calls per transaction (locktime, BIP68 sequence locks,
// input amounts and fee, sigop cost), cheaper than serialising the batch
// to the txvalidator pool and back. They run txvalidator's checks in the
// same order and give the same rules, fees and sigop costs (policy is
// never asked for in a block), except the context-free transaction
// sanity: the block's sanity check (CheckBlockSanity) ran it on every
// transaction, and a block reaches activation only after passing it.
// txs is the block's transactions and pv[i] the outputs tx i spends; the
// coinbase (txs[0]) is not checked. Jobs are split over the available
// cores.
func (s *Service) localChecks(txs []*btcutil.Tx, pv [][]txcheck.Prevout, cc txcheck.Context) []txOutcome {
	out := make([]txOutcome, len(txs)-1)
	parallel.Ranges(len(out), 64, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			r, err := txcheck.Contextual(txs[k+1], pv[k+1], cc, s.deps.Network)
			out[k] = txOutcome{fee: r.Fee, sigops: r.SigopCost, err: err}
		}
	})
	return out
}
