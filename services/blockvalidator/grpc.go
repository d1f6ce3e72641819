package blockvalidator

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// grpcServer implements BlockValidatorService.
type grpcServer struct {
	blockvalidatorv1.UnimplementedBlockValidatorServiceServer
	s *Service
}

// checkReady answers Unavailable until Run has reconciled the chain.
func (g *grpcServer) checkReady() error {
	select {
	case <-g.s.ready.C():
		return nil
	default:
		return status.Error(codes.Unavailable, "blockvalidator is starting")
	}
}

// SubmitBlock validates and connects a block; rule violations are
// reported in the response, not as errors.
func (g *grpcServer) SubmitBlock(ctx context.Context, req *blockvalidatorv1.SubmitBlockRequest) (*blockvalidatorv1.SubmitBlockResponse, error) {
	if len(req.GetBlock()) == 0 {
		return nil, rules.InvalidArgument("block decode failed: empty block")
	}
	if err := g.checkReady(); err != nil {
		return nil, err
	}
	// Processing runs under the service's context: a client that hangs
	// up must not abort a connect halfway.
	resp, err := g.s.submit(g.s.runCtx, req.GetBlock(), false)
	if err != nil {
		return nil, internalStatus(err)
	}
	return resp, nil
}

// GetBlock reads a block from the block store.
func (g *grpcServer) GetBlock(ctx context.Context, req *blockvalidatorv1.GetBlockRequest) (*blockvalidatorv1.GetBlockResponse, error) {
	hash, err := hashFrom(req.GetHash())
	if err != nil {
		return nil, rules.InvalidArgument("hash: %v", err)
	}
	if err := g.checkReady(); err != nil {
		return nil, err
	}
	raw, err := g.s.store.Get(ctx, hash)
	if errors.Is(err, blockstore.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "block %s not found", hash)
	}
	if err != nil {
		return nil, internalStatus(err)
	}
	return &blockvalidatorv1.GetBlockResponse{Block: raw}, nil
}

// GetStatus reports the active tip, the orphan count and the blocks
// connected since start.
func (g *grpcServer) GetStatus(ctx context.Context, _ *blockvalidatorv1.GetStatusRequest) (*blockvalidatorv1.GetStatusResponse, error) {
	if err := g.checkReady(); err != nil {
		return nil, err
	}
	tip, height := g.s.tip()
	return &blockvalidatorv1.GetStatusResponse{
		TipHash:         tip[:],
		TipHeight:       height,
		Orphans:         int32(g.s.orphanCount.Load()),
		BlocksConnected: g.s.connected.Load(),
	}, nil
}

// internalStatus maps a failure that is not a rule violation to a gRPC
// status: statuses we made pass through, dependency outages become
// Unavailable, anything else Internal.
func internalStatus(err error) error {
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err // a status this service made, e.g. InvalidArgument
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.Unavailable, err.Error())
	}
	switch status.Code(err) { // a dependency's status, wrapped
	case codes.Unavailable, codes.DeadlineExceeded:
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
