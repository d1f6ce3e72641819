package txvalidator

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// grpcServer implements TxValidatorService.
type grpcServer struct {
	txvalidatorv1.UnimplementedTxValidatorServiceServer
	s *Service
}

// Validate checks a batch; rejected transactions are results, not errors.
func (g *grpcServer) Validate(ctx context.Context, req *txvalidatorv1.ValidateRequest) (*txvalidatorv1.ValidateResponse, error) {
	resp, err := g.s.eng.validate(ctx, req, "grpc")
	if err != nil {
		var ae *argError
		if errors.As(err, &ae) {
			return nil, rules.InvalidArgument("%s", err.Error())
		}
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, rules.ToStatus(err)
	}
	return resp, nil
}
