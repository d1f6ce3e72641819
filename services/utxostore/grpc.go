package utxostore

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
	"github.com/btcmesh/btcmesh/internal/packed"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// grpcServer implements utxostorev1.UtxoStoreServiceServer.
type grpcServer struct {
	utxostorev1.UnimplementedUtxoStoreServiceServer
	svc *Service
}

func errNotReady() error { return status.Error(codes.Unavailable, "utxostore is not open yet") }

// decodeBlock parses a serialized block (with witnesses).
func decodeBlock(b []byte) (*wire.MsgBlock, error) {
	if len(b) == 0 {
		return nil, rules.InvalidArgument("block is empty")
	}
	var blk wire.MsgBlock
	r := bytes.NewReader(b)
	if err := blk.Deserialize(r); err != nil {
		return nil, rules.InvalidArgument("block does not decode: %v", err)
	}
	if r.Len() != 0 {
		return nil, rules.InvalidArgument("block has %d trailing bytes", r.Len())
	}
	return &blk, nil
}

// GetUtxos looks up outpoints in one snapshot.
func (g *grpcServer) GetUtxos(_ context.Context, req *utxostorev1.GetUtxosRequest) (*utxostorev1.GetUtxosResponse, error) {
	if len(req.GetPackedOutpoints()) > 0 {
		if len(req.GetOutpoints()) > 0 {
			return nil, rules.InvalidArgument("set outpoints or packed_outpoints, not both")
		}
		return g.getPacked(req.GetPackedOutpoints())
	}
	ops := make([]wire.OutPoint, len(req.GetOutpoints()))
	for i, op := range req.GetOutpoints() {
		if len(op.GetTxid()) != chainhash.HashSize {
			return nil, rules.InvalidArgument("outpoints[%d].txid is %d bytes, want 32", i, len(op.GetTxid()))
		}
		copy(ops[i].Hash[:], op.GetTxid())
		ops[i].Index = op.GetIndex()
	}
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	found, tip, err := st.lookupMany(ops)
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	g.svc.metrics.lookups.Add(float64(len(ops)))
	resp := &utxostorev1.GetUtxosResponse{
		Utxos:     make([]*utxostorev1.Utxo, len(ops)),
		TipHash:   tip.hash[:],
		TipHeight: tip.height,
	}
	for i, l := range found {
		u := &utxostorev1.Utxo{Outpoint: req.GetOutpoints()[i], Found: l.found}
		if l.found {
			u.Output = &commonv1.TxOut{Value: l.coin.Amount, PkScript: l.coin.Script}
			u.Height = l.coin.Height
			u.Coinbase = l.coin.Coinbase
		}
		resp.Utxos[i] = u
	}
	return resp, nil
}

// getPacked answers GetUtxos for packed outpoints: each coin's record
// goes out as the store holds it.
func (g *grpcServer) getPacked(raw []byte) (*utxostorev1.GetUtxosResponse, error) {
	ops := make([]wire.OutPoint, len(raw)/packed.OutPointLen)
	if err := packed.ReadOutPoints(ops, raw); err != nil {
		return nil, rules.InvalidArgument("packed_outpoints: %v", err)
	}
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	vals, tip, err := st.lookupRaw(ops)
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	g.svc.metrics.lookups.Add(float64(len(ops)))
	size := 0
	for _, v := range vals {
		size += 2 + len(v)
	}
	out := make([]byte, 0, size)
	for _, v := range vals {
		out = packed.AppendRecord(out, v)
	}
	return &utxostorev1.GetUtxosResponse{PackedUtxos: out, TipHash: tip.hash[:], TipHeight: tip.height}, nil
}

// ConnectBlock applies a block, or its changes, or the block the last
// PrepareConnect resolved, on top of the tip.
func (g *grpcServer) ConnectBlock(_ context.Context, req *utxostorev1.ConnectBlockRequest) (*utxostorev1.ConnectBlockResponse, error) {
	if req.GetHeight() < 1 {
		return nil, rules.InvalidArgument("height must be >= 1 (got %d)", req.GetHeight())
	}
	var (
		ch       *blockchanges.Changes
		prepared chainhash.Hash
		err      error
	)
	if ph := req.GetPreparedHash(); len(ph) > 0 {
		if req.GetChanges() != nil || len(req.GetBlock()) > 0 {
			return nil, rules.InvalidArgument("set block, changes or prepared_hash, not two of them")
		}
		if len(ph) != chainhash.HashSize {
			return nil, rules.InvalidArgument("prepared_hash is %d bytes, want 32", len(ph))
		}
		copy(prepared[:], ph)
	} else if ch, err = requestChanges(req.GetBlock(), req.GetChanges()); err != nil {
		return nil, err
	}
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	start := time.Now()
	var res connectResult
	if ch != nil {
		res, err = st.connect(ch, req.GetHeight())
	} else {
		res, err = st.connectPrepared(prepared, req.GetHeight())
		if errors.Is(err, errNotPrepared) {
			return nil, status.Errorf(codes.NotFound, "block %s at height %d: %v (send its changes)", prepared, req.GetHeight(), err)
		}
	}
	if err != nil {
		hash := prepared
		if ch != nil {
			hash = ch.Hash
		}
		g.svc.deps.Log.Warn("block not connected", "height", req.GetHeight(), "hash", hash.String(), "err", err)
		return nil, rules.ToStatus(err)
	}
	elapsed := time.Since(start)
	g.svc.metrics.connect.Observe(elapsed.Seconds())
	g.svc.metrics.spent.Add(float64(res.spent))
	g.svc.metrics.cacheHits.Add(float64(res.cacheHits))
	g.svc.metrics.setTip(res.tip)
	g.svc.deps.Log.Info("block connected", "height", res.tip.height, "hash", res.tip.hash.String(),
		"spent", res.spent, "cache_hits", res.cacheHits, "created", res.created,
		"txouts", res.tip.txouts, "prepared", ch == nil, "ms", elapsed.Milliseconds())
	return &utxostorev1.ConnectBlockResponse{TipHash: res.tip.hash[:], TipHeight: res.tip.height}, nil
}

// PrepareConnect resolves a block's connect on the tip and answers the
// coins it spends.
func (g *grpcServer) PrepareConnect(_ context.Context, req *utxostorev1.PrepareConnectRequest) (*utxostorev1.PrepareConnectResponse, error) {
	if req.GetHeight() < 1 {
		return nil, rules.InvalidArgument("height must be >= 1 (got %d)", req.GetHeight())
	}
	if req.GetChanges() == nil {
		return nil, rules.InvalidArgument("changes are required")
	}
	ch, err := blockchanges.FromProto(req.GetChanges())
	if err != nil {
		return nil, err
	}
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	spent, tip, err := st.prepare(ch, req.GetHeight(), req.GetCheckBip30())
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	return &utxostorev1.PrepareConnectResponse{PackedSpent: spent, TipHash: tip.hash[:], TipHeight: tip.height}, nil
}

// requestChanges reads the changes a ConnectBlockRequest carries, given
// as the serialized block or as changes (exactly one of them).
func requestChanges(block []byte, changes *utxostorev1.BlockChanges) (*blockchanges.Changes, error) {
	switch {
	case changes != nil && len(block) > 0:
		return nil, rules.InvalidArgument("set block or changes, not both")
	case changes != nil:
		return blockchanges.FromProto(changes)
	}
	blk, err := decodeBlock(block)
	if err != nil {
		return nil, err
	}
	return blockchanges.Of(blk), nil
}

// DisconnectBlock undoes the tip block.
func (g *grpcServer) DisconnectBlock(_ context.Context, req *utxostorev1.DisconnectBlockRequest) (*utxostorev1.DisconnectBlockResponse, error) {
	blk, err := decodeBlock(req.GetBlock())
	if err != nil {
		return nil, err
	}
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	start := time.Now()
	tip, err := st.disconnect(blk)
	if err != nil {
		g.svc.deps.Log.Warn("block not disconnected", "hash", blk.BlockHash().String(), "err", err)
		return nil, rules.ToStatus(err)
	}
	g.svc.metrics.disconnect.Observe(time.Since(start).Seconds())
	g.svc.metrics.setTip(tip)
	g.svc.deps.Log.Info("block disconnected", "hash", blk.BlockHash().String(),
		"tip", tip.hash.String(), "height", tip.height, "txouts", tip.txouts)
	return &utxostorev1.DisconnectBlockResponse{TipHash: tip.hash[:], TipHeight: tip.height}, nil
}

// GetTip returns the block the set reflects (the genesis block for a new
// store, never the "before genesis" zero hash).
func (g *grpcServer) GetTip(context.Context, *utxostorev1.GetTipRequest) (*utxostorev1.GetTipResponse, error) {
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	tip, err := st.tip()
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	return &utxostorev1.GetTipResponse{TipHash: tip.hash[:], TipHeight: tip.height}, nil
}

// GetStats scans the whole set (gettxoutsetinfo); it is O(set size).
func (g *grpcServer) GetStats(ctx context.Context, _ *utxostorev1.GetStatsRequest) (*utxostorev1.GetStatsResponse, error) {
	st, ok := g.svc.acquire()
	if !ok {
		return nil, errNotReady()
	}
	defer g.svc.release()
	s, err := st.stats(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, rules.ToStatus(err)
	}
	return &utxostorev1.GetStatsResponse{
		Height:         s.tip.height,
		BestBlock:      s.tip.hash[:],
		Transactions:   s.transactions,
		Txouts:         s.txouts,
		Bogosize:       s.bogosize,
		HashSerialized: s.hashSerialized[:],
		TotalAmount:    s.totalAmount,
		DiskSize:       s.diskSize,
	}, nil
}
