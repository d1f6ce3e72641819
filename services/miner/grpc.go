package miner

import (
	"context"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// grpcServer implements btcmesh.miner.v1.MinerService.
type grpcServer struct {
	minerv1.UnimplementedMinerServiceServer
	s *Service
}

func (g *grpcServer) SubmitTransaction(ctx context.Context, req *minerv1.SubmitTransactionRequest) (*minerv1.SubmitTransactionResponse, error) {
	if len(req.GetTx()) == 0 {
		return nil, rules.InvalidArgument("TX decode failed: empty transaction")
	}
	e, err := g.s.submitTx(ctx, req.GetTx(), req.GetMaxFeeRate(), "rpc")
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	return &minerv1.SubmitTransactionResponse{Txid: e.txid[:], Wtxid: e.wtxid[:], Fee: e.fee, Vsize: e.vsize}, nil
}

func (g *grpcServer) GetMempool(_ context.Context, req *minerv1.GetMempoolRequest) (*minerv1.GetMempoolResponse, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*minerv1.MempoolEntry, 0, len(s.pool.entries))
	for _, e := range s.pool.entries {
		me := &minerv1.MempoolEntry{
			Txid: e.txid[:], Wtxid: e.wtxid[:], Fee: e.fee, Vsize: e.vsize, Weight: e.weight,
			Time: e.time, Height: e.height,
		}
		for p := range e.parents {
			me.Depends = append(me.Depends, p[:])
		}
		if req.GetIncludeTx() {
			me.Tx = e.raw
		}
		out = append(out, me)
	}
	return &minerv1.GetMempoolResponse{Entries: out}, nil
}

func (g *grpcServer) CheckOutpoints(_ context.Context, req *minerv1.CheckOutpointsRequest) (*minerv1.CheckOutpointsResponse, error) {
	ops := make([]wire.OutPoint, len(req.GetOutpoints()))
	for i, op := range req.GetOutpoints() {
		if len(op.GetTxid()) != 32 {
			return nil, rules.InvalidArgument("outpoint %d: txid must be 32 bytes, got %d", i, len(op.GetTxid()))
		}
		copy(ops[i].Hash[:], op.GetTxid())
		ops[i].Index = op.GetIndex()
	}
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	states := make([]*minerv1.OutpointState, len(ops))
	for i, op := range ops {
		st := &minerv1.OutpointState{}
		_, st.Spent = s.pool.spends[op]
		if out, ok := s.pool.output(op); ok {
			st.Created = true
			st.Output = &commonv1.TxOut{Value: out.Value, PkScript: out.PkScript}
		}
		states[i] = st
	}
	return &minerv1.CheckOutpointsResponse{States: states}, nil
}

func (g *grpcServer) GetBlockTemplate(ctx context.Context, req *minerv1.GetBlockTemplateRequest) (*minerv1.GetBlockTemplateResponse, error) {
	if len(req.GetPkScript()) == 0 {
		return nil, rules.InvalidArgument("pk_script must not be empty")
	}
	if len(req.GetPkScript()) > maxCoinbasePkScript {
		return nil, rules.InvalidArgument("pk_script of %d bytes is over %d", len(req.GetPkScript()), maxCoinbasePkScript)
	}
	t, err := g.s.buildTemplate(ctx, req.GetPkScript())
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	raw, err := serializeBlock(t.block)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "serialize template: %v", err)
	}
	return &minerv1.GetBlockTemplateResponse{
		Block: raw, Height: t.height, Fees: t.fees, Target: targetBytes(t.block.Header.Bits),
	}, nil
}

func (g *grpcServer) Generate(ctx context.Context, req *minerv1.GenerateRequest) (*minerv1.GenerateResponse, error) {
	hashes, err := g.s.generate(ctx, req.GetBlocks(), req.GetAddress(), req.GetMaxTries())
	if err != nil {
		return nil, rules.ToStatus(err)
	}
	out := &minerv1.GenerateResponse{}
	for _, h := range hashes {
		out.Hashes = append(out.Hashes, h[:])
	}
	return out, nil
}

// targetBytes is the compact target as 32 big-endian bytes.
func targetBytes(bits uint32) []byte {
	t := blockchain.CompactToBig(bits)
	out := make([]byte, 32)
	if t.Sign() > 0 && t.BitLen() <= 256 {
		t.FillBytes(out)
	}
	return out
}
