package blockvalidator

import (
	"runtime"
	"sync"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

// localChecks runs, in this process, the MODE_FULL checks of a batch whose
// every transaction skips its scripts (the script cache covers them all):
// what remains is a few library calls per transaction (sanity, locktime,
// BIP68 sequence locks, input amounts and fee, sigop cost), cheaper than
// serialising the batch to the txvalidator pool and back. They are the
// checks txvalidator's engine runs for such a job, in the same order,
// giving the same rules, fees and sigop costs (policy is never asked for
// in a block). Jobs are split over the available cores.
func (s *Service) localChecks(txs []*btcutil.Tx, req *txvalidatorv1.ValidateRequest) *txvalidatorv1.ValidateResponse {
	jobs := req.GetJobs()
	results := make([]*txvalidatorv1.TxResult, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), (len(jobs)+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(jobs); k += workers {
				results[k] = s.checkTxLocal(txs[k+1], jobs[k].GetPrevouts(), req.GetContext())
			}
		}()
	}
	wg.Wait()
	return &txvalidatorv1.ValidateResponse{Results: results}
}

// checkTxLocal checks one transaction as txvalidator's MODE_FULL does,
// scripts excepted.
func (s *Service) checkTxLocal(utx *btcutil.Tx, prevouts []*txvalidatorv1.Prevout, cc *txvalidatorv1.ChainContext) *txvalidatorv1.TxResult {
	res := &txvalidatorv1.TxResult{FailedInput: -1}
	tx := utx.MsgTx()
	if len(prevouts) != len(tx.TxIn) {
		return rejectLocal(res, rules.New(rules.MissingInputs, "%d prevouts for %d inputs", len(prevouts), len(tx.TxIn)))
	}
	res.Weight = blockchain.GetTransactionWeight(utx)
	if err := txcheck.Sanity(utx); err != nil {
		return rejectLocal(res, err)
	}
	pv := make([]txcheck.Prevout, len(prevouts))
	for i, p := range prevouts {
		pv[i] = txcheck.Prevout{Height: p.GetHeight(), Coinbase: p.GetCoinbase(), MedianTimePast: p.GetMedianTimePast()}
		if out := p.GetOutput(); out != nil {
			pv[i].Output = &wire.TxOut{Value: out.GetValue(), PkScript: out.GetPkScript()}
		}
	}
	ctx := txcheck.Context{Height: cc.GetHeight(), MedianTimePast: cc.GetMedianTimePast(), BlockTime: cc.GetBlockTime()}
	r, err := txcheck.Contextual(utx, pv, ctx, s.deps.Network)
	res.Fee, res.SigopCost = r.Fee, r.SigopCost
	if err != nil {
		return rejectLocal(res, err)
	}
	res.Valid = true
	return res
}

// rejectLocal fills a failed result as txvalidator does.
func rejectLocal(res *txvalidatorv1.TxResult, err error) *txvalidatorv1.TxResult {
	kind, detail := txcheck.Rejection(err)
	res.Valid = false
	res.Rejection = &commonv1.Rejection{Rule: string(kind), Detail: detail}
	return res
}
