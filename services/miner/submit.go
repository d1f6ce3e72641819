package miner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// Policy constants.
const (
	// defaultMaxFeeRate is 0.10 BTC/kvB, in sat/kvB (sendrawtransaction's default).
	defaultMaxFeeRate = 10_000_000
	// bytesPerSigOp weighs sigops into the virtual size, as Core's policy does.
	bytesPerSigOp = 20
	// submitAttempts bounds retries when the chain or the mempool changed
	// while a transaction was being validated (after 50, 100, ... ms).
	submitAttempts = 4
)

// Rule names the miner reports that rules does not define.
const (
	// kindCoinbase: a coinbase transaction was submitted on its own.
	kindCoinbase rules.Kind = "coinbase"
	// kindMempoolFull: the transaction was evicted at once because it pays too little.
	kindMempoolFull rules.Kind = "mempool full"
)

// errRetry means the state moved under an acceptance; it is redone.
var errRetry = errors.New("mempool or chain changed during validation")

// submitTx runs acceptance, counts and logs the outcome and publishes
// tx.accepted. maxFeeRate is in sat/kvB: 0 means the default, negative
// disables the check.
func (s *Service) submitTx(ctx context.Context, raw []byte, maxFeeRate int64, source string) (*entry, error) {
	var (
		e   *entry
		err error
	)
	for attempt := range submitAttempts {
		e, err = s.accept(ctx, raw, maxFeeRate)
		if !errors.Is(err, errRetry) {
			break
		}
		// Let the burst that moved the state (a run of new tips) pass.
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if errors.Is(err, errRetry) {
		err = status.Error(codes.Unavailable, "mempool or chain kept changing during validation; try again")
	}
	if err != nil {
		rule := "error"
		if k, ok := rules.KindOf(err); ok {
			rule = string(k)
		} else if status.Code(err) == codes.InvalidArgument {
			rule = string(rules.Malformed)
		}
		s.metrics.rejected.WithLabelValues(rule).Inc()
		return nil, err
	}
	s.metrics.accepted.Inc()
	ev := &eventsv1.TxAccepted{Txid: e.txid[:], Wtxid: e.wtxid[:], FeeRate: e.feeRate(), Tx: e.raw}
	if perr := bus.Publish(s.deps.NATS, s.subj.TxAccepted(), ev); perr != nil {
		s.log.Warn("publish tx accepted failed", "txid", e.txid.String(), "err", perr)
	}
	s.log.Debug("tx accepted", "txid", e.txid.String(), "fee", e.fee, "vsize", e.vsize, "source", source)
	return e, nil
}

// decodeTx parses a serialized transaction, refusing trailing bytes.
func decodeTx(raw []byte) (*wire.MsgTx, error) {
	tx := &wire.MsgTx{}
	r := bytes.NewReader(raw)
	if err := tx.Deserialize(r); err != nil {
		return nil, rules.InvalidArgument("TX decode failed: %v", err)
	}
	if r.Len() != 0 {
		return nil, rules.InvalidArgument("TX decode failed: %d bytes after the transaction", r.Len())
	}
	return tx, nil
}

// accept is one attempt at mempool acceptance.
func (s *Service) accept(ctx context.Context, raw []byte, maxFeeRate int64) (*entry, error) {
	if !s.started() {
		return nil, status.Error(codes.Unavailable, "miner is starting")
	}
	tx, err := decodeTx(raw)
	if err != nil {
		return nil, err
	}
	if isCoinbase(tx) {
		return nil, rules.New(kindCoinbase, "coinbase transactions cannot enter the mempool")
	}
	txid, wtxid := tx.TxHash(), tx.WitnessHash()

	// Phase 1, under the lock: duplicates, conflicts, in-mempool parents.
	prevouts := make([]*txvalidatorv1.Prevout, len(tx.TxIn))
	parents := map[chainhash.Hash]struct{}{}
	fromMempool := make([]bool, len(tx.TxIn))
	var lookup []int
	s.mu.Lock()
	generation := s.generation
	if _, ok := s.pool.entries[txid]; ok {
		s.mu.Unlock()
		return nil, rules.New(rules.AlreadyInMempool, "%s", txid)
	}
	if op, by, ok := s.pool.conflict(tx); ok {
		s.mu.Unlock()
		return nil, rules.New(rules.MempoolConflict, "input %s is already spent by mempool transaction %s (replacement is not supported)", op, by)
	}
	var missing []string
	for i, in := range tx.TxIn {
		op := in.PreviousOutPoint
		if out, ok := s.pool.output(op); ok {
			prevouts[i] = &txvalidatorv1.Prevout{Output: &commonv1.TxOut{Value: out.Value, PkScript: out.PkScript}}
			parents[op.Hash] = struct{}{}
			fromMempool[i] = true
			continue
		}
		if _, ok := s.pool.entries[op.Hash]; ok {
			missing = append(missing, op.String())
			continue
		}
		lookup = append(lookup, i)
	}
	s.mu.Unlock()
	if len(missing) > 0 {
		return nil, rules.New(rules.MissingInputs, "no output %v in the mempool", missing)
	}

	tip, err := s.chainTip(ctx, false)
	if err != nil {
		return nil, err
	}

	// One lookup for the confirmed prevouts, plus the transaction's own
	// outputs to tell an already-confirmed transaction apart.
	if len(lookup) > 0 {
		req := &utxostorev1.GetUtxosRequest{}
		for _, i := range lookup {
			op := tx.TxIn[i].PreviousOutPoint
			req.Outpoints = append(req.Outpoints, &commonv1.OutPoint{Txid: op.Hash[:], Index: op.Index})
		}
		for j := range tx.TxOut {
			req.Outpoints = append(req.Outpoints, &commonv1.OutPoint{Txid: txid[:], Index: uint32(j)})
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := s.utxos.GetUtxos(cctx, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("look up prevouts: %w", err)
		}
		if len(resp.GetUtxos()) != len(req.Outpoints) {
			return nil, fmt.Errorf("utxostore answered %d of %d outpoints", len(resp.GetUtxos()), len(req.Outpoints))
		}
		if !bytes.Equal(resp.GetTipHash(), tip.hash[:]) {
			if tip, err = s.chainTip(ctx, true); err != nil {
				return nil, err
			}
		}
		utxos := resp.GetUtxos()
		for _, u := range utxos[len(lookup):] {
			if u.GetFound() {
				return nil, rules.New(rules.AlreadyKnown, "%s has unspent confirmed outputs", txid)
			}
		}
		heights := map[int32]int64{}
		for k, i := range lookup {
			u := utxos[k]
			if !u.GetFound() {
				missing = append(missing, tx.TxIn[i].PreviousOutPoint.String())
				continue
			}
			prevouts[i] = &txvalidatorv1.Prevout{Output: u.GetOutput(), Height: u.GetHeight(), Coinbase: u.GetCoinbase()}
			heights[max(u.GetHeight()-1, 0)] = 0
		}
		if len(missing) > 0 {
			return nil, rules.New(rules.MissingInputs, "missing or spent inputs %v", missing)
		}
		if err := s.medianTimes(ctx, heights); err != nil {
			return nil, err
		}
		for k, i := range lookup {
			prevouts[i].MedianTimePast = heights[max(utxos[k].GetHeight()-1, 0)]
		}
	}
	for i := range prevouts {
		if fromMempool[i] {
			// A mempool parent's output counts as mined in the next block.
			prevouts[i].Height = tip.height + 1
			prevouts[i].MedianTimePast = tip.mtp
		}
	}

	vresp, err := s.scripts.Validate(ctx, &txvalidatorv1.ValidateRequest{
		Jobs:    []*txvalidatorv1.TxJob{{Tx: raw, Prevouts: prevouts}},
		Context: &txvalidatorv1.ChainContext{Height: tip.height + 1, MedianTimePast: tip.mtp, BlockTime: time.Now().Unix()},
		Mode:    txvalidatorv1.Mode_MODE_FULL,
		Policy:  true,
	})
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "validate transaction: %v", err)
	}
	if len(vresp.GetResults()) != 1 {
		return nil, fmt.Errorf("validator answered %d results for 1 job", len(vresp.GetResults()))
	}
	res := vresp.GetResults()[0]
	if !res.GetValid() {
		rej := res.GetRejection()
		return nil, &rules.RuleError{Kind: rules.Kind(rej.GetRule()), Detail: rej.GetDetail()}
	}

	weight := weightOf(tx)
	vsize := policyVSize(weight, res.GetSigopCost())
	fee := res.GetFee()
	if need := requiredFee(s.cfg.MinRelayFee, vsize); fee < need {
		return nil, rules.New(rules.MinRelayFee, "%d < %d", fee, need)
	}
	if maxFeeRate == 0 {
		maxFeeRate = defaultMaxFeeRate
	}
	if maxFeeRate > 0 {
		if limit := maxFeeRate * vsize / 1000; fee > limit {
			return nil, rules.New(rules.MaxFeeExceeded, "fee %d exceeds %d (max fee rate %d sat/kvB)", fee, limit, maxFeeRate)
		}
	}

	e := &entry{
		tx: tx, raw: raw, txid: txid, wtxid: wtxid, fee: fee, vsize: vsize, weight: weight,
		sigops: res.GetSigopCost(), time: time.Now().Unix(), height: tip.height, parents: parents,
	}

	// Phase 2: insert if nothing moved meanwhile.
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pool.entries[txid]; ok {
		return nil, rules.New(rules.AlreadyInMempool, "%s", txid)
	}
	if op, by, ok := s.pool.conflict(tx); ok {
		return nil, rules.New(rules.MempoolConflict, "input %s is already spent by mempool transaction %s (replacement is not supported)", op, by)
	}
	if s.generation != generation {
		return nil, errRetry
	}
	for p := range parents {
		if _, ok := s.pool.entries[p]; !ok {
			return nil, errRetry
		}
	}
	s.pool.add(e)
	evicted := s.pool.trim(int64(s.cfg.MaxMempoolMB) << 20)
	s.updateGauges()
	for _, ev := range evicted {
		if ev.txid == txid {
			return nil, rules.New(kindMempoolFull, "fee rate %d sat/kvB is too low for a full mempool", e.feeRate())
		}
	}
	if len(evicted) > 0 {
		s.log.Info("mempool full, evicted transactions", "count", len(evicted))
	}
	return e, nil
}

// weightOf is BIP141's transaction weight.
func weightOf(tx *wire.MsgTx) int64 {
	return int64(tx.SerializeSizeStripped()*3 + tx.SerializeSize())
}

// policyVSize is Core's virtual size: weight, or sigops priced at
// bytesPerSigOp when that is more, over 4, rounded up.
func policyVSize(weight, sigopCost int64) int64 {
	return (max(weight, sigopCost*bytesPerSigOp) + 3) / 4
}

// requiredFee is the fee rate (sat/kvB) applied to vsize, rounded up.
func requiredFee(rate, vsize int64) int64 {
	return (rate*vsize + 999) / 1000
}

// medianTimes fills heights (height -> MTP) with one headers call.
func (s *Service) medianTimes(ctx context.Context, heights map[int32]int64) error {
	if len(heights) == 0 {
		return nil
	}
	req := &headersv1.GetHeadersByHeightRequest{}
	for h := range heights {
		req.Heights = append(req.Heights, h)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	resp, err := s.headers.GetHeadersByHeight(cctx, req)
	cancel()
	if err != nil {
		return fmt.Errorf("median times of prevout blocks: %w", err)
	}
	if len(resp.GetInfos()) != len(req.Heights) {
		return status.Errorf(codes.Unavailable, "headers answered %d of %d heights", len(resp.GetInfos()), len(req.Heights))
	}
	for i, info := range resp.GetInfos() {
		if info == nil || len(info.GetHash()) == 0 {
			return status.Errorf(codes.Unavailable, "no active block at height %d", req.Heights[i])
		}
		heights[req.Heights[i]] = info.GetMedianTimePast()
	}
	return nil
}

// chainTip returns the active tip, from cache unless fresh is set.
func (s *Service) chainTip(ctx context.Context, fresh bool) (tipInfo, error) {
	if !fresh {
		s.tipMu.Lock()
		t := s.tip
		s.tipMu.Unlock()
		if t != nil {
			return *t, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	resp, err := s.headers.GetChainInfo(cctx, &headersv1.GetChainInfoRequest{})
	cancel()
	if err != nil {
		return tipInfo{}, fmt.Errorf("chain info: %w", err)
	}
	t, err := tipFromInfo(resp.GetTip())
	if err != nil {
		return tipInfo{}, err
	}
	s.tipMu.Lock()
	s.tip = &t
	s.tipMu.Unlock()
	return t, nil
}

// forgetTip drops the cached tip after the chain moved.
func (s *Service) forgetTip() {
	s.tipMu.Lock()
	s.tip = nil
	s.tipMu.Unlock()
}

func tipFromInfo(info *headersv1.HeaderInfo) (tipInfo, error) {
	if info == nil || len(info.GetHash()) != chainhash.HashSize {
		return tipInfo{}, status.Error(codes.Unavailable, "the chain has no active tip yet")
	}
	var t tipInfo
	copy(t.hash[:], info.GetHash())
	t.height = info.GetHeight()
	t.mtp = info.GetMedianTimePast()
	if raw := info.GetHeader(); len(raw) == wire.MaxBlockHeaderPayload {
		var h wire.BlockHeader
		if err := h.Deserialize(bytes.NewReader(raw)); err == nil {
			t.bits = h.Bits
		}
	}
	return t, nil
}

// handleTxReceived submits a relayed transaction.
func (s *Service) handleTxReceived(ctx context.Context, data []byte) {
	ev := &eventsv1.TxReceived{}
	if err := proto.Unmarshal(data, ev); err != nil {
		s.log.Warn("bad tx received event", "err", err)
		return
	}
	if _, err := s.submitTx(ctx, ev.GetTx(), -1, ev.GetSource()); err != nil {
		s.log.Debug("relayed tx rejected", "source", ev.GetSource(), "err", err)
	}
}
