package blockvalidator

import (
	"runtime"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// coinbaseJob is the rule txvalidator answers for a coinbase submitted as
// a job (a block's second coinbase; CheckBlockSanity rejects it first).
const coinbaseJob rules.Kind = "bad-txns-coinbase"

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
	if err := blockchain.CheckTransactionSanity(utx); err != nil {
		return rejectLocal(res, err)
	}
	if blockchain.IsCoinBaseTx(tx) {
		return rejectLocal(res, rules.New(coinbaseJob, "coinbase must not be submitted as a job"))
	}
	net := s.deps.Network
	height, mtp := cc.GetHeight(), cc.GetMedianTimePast()
	cutoff := time.Unix(cc.GetBlockTime(), 0)
	if net.CSVActive(height) {
		cutoff = time.Unix(mtp, 0)
	}
	if !blockchain.IsFinalizedTransaction(utx, height, cutoff) {
		return rejectLocal(res, rules.New(rules.NonFinal, "locktime %d not reached at height %d, time %d",
			tx.LockTime, height, cutoff.Unix()))
	}
	if net.CSVActive(height) {
		if err := sequenceLocks(tx, prevouts, height, mtp); err != nil {
			return rejectLocal(res, err)
		}
	}
	view := blockchain.NewUtxoViewpoint()
	entries := view.Entries()
	for i, in := range tx.TxIn {
		p := prevouts[i]
		out := p.GetOutput()
		if out == nil {
			return rejectLocal(res, rules.New(rules.MissingInputs, "prevout %d has no output", i))
		}
		entries[in.PreviousOutPoint] = blockchain.NewUtxoEntry(&wire.TxOut{Value: out.GetValue(), PkScript: out.GetPkScript()},
			p.GetHeight(), p.GetCoinbase())
	}
	fee, err := blockchain.CheckTransactionInputs(utx, height, view, net.Params)
	if err != nil {
		return rejectLocal(res, err)
	}
	res.Fee = fee
	sigops, err := blockchain.GetSigOpCost(utx, false, view, true, net.SegwitActive(height))
	if err != nil {
		return rejectLocal(res, err)
	}
	res.SigopCost = int64(sigops)
	if sigops > blockchain.MaxBlockSigOpsCost {
		return rejectLocal(res, rules.New(rules.BadBlockSigops, "transaction sigop cost %d exceeds the block limit %d",
			sigops, blockchain.MaxBlockSigOpsCost))
	}
	res.Valid = true
	return res
}

// rejectLocal fills a failed result as txvalidator does.
func rejectLocal(res *txvalidatorv1.TxResult, err error) *txvalidatorv1.TxResult {
	err = rules.FromBtcd(err)
	kind, ok := rules.KindOf(err)
	if !ok {
		kind = "internal-error"
	}
	detail := err.Error()
	if re, isRule := err.(*rules.RuleError); isRule {
		detail = re.Detail
	}
	res.Valid = false
	res.Rejection = &commonv1.Rejection{Rule: string(kind), Detail: detail}
	return res
}

// sequenceLocks applies BIP68 relative locks as Bitcoin Core's
// CalculateSequenceLocks and EvaluateSequenceLocks do (the same code as
// txvalidator's checkSequenceLocks).
func sequenceLocks(tx *wire.MsgTx, prevouts []*txvalidatorv1.Prevout, height int32, mtp int64) error {
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
			t := prevouts[i].GetMedianTimePast() + lock<<wire.SequenceLockTimeGranularity - 1
			if t > minTime {
				minTime, timeInput = t, i
			}
		} else {
			h := int64(prevouts[i].GetHeight()) + lock - 1
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
