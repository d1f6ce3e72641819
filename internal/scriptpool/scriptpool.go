// Package scriptpool is the client side of the txvalidator pool on NATS:
// it sends txvalidator.v1.ValidateRequest batches to the queue group,
// spreading large batches over several workers and retrying work whose
// worker died or timed out.
package scriptpool

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
)

// Client sends validation batches to the pool.
type Client struct {
	nc       *nats.Conn
	subject  string
	timeout  time.Duration
	attempts int
	// chunkJobs is how many jobs travel in one request.
	chunkJobs int
}

// New returns a client for the network's pool. timeout bounds one request;
// a request that times out is sent again (attempts in all).
func New(nc *nats.Conn, s bus.Subjects, timeout time.Duration, attempts int) *Client {
	return &Client{nc: nc, subject: s.ScriptValidate(), timeout: timeout, attempts: attempts, chunkJobs: 64}
}

// Validate runs req's jobs on the pool and returns one result per job, in
// order. Jobs are split into chunks that run on different workers at once.
func (c *Client) Validate(ctx context.Context, req *txvalidatorv1.ValidateRequest) (*txvalidatorv1.ValidateResponse, error) {
	jobs := req.GetJobs()
	results := make([]*txvalidatorv1.TxResult, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for start := 0; start < len(jobs); start += c.chunkJobs {
		end := min(start+c.chunkJobs, len(jobs))
		chunk := &txvalidatorv1.ValidateRequest{
			Jobs: jobs[start:end], Context: req.GetContext(), Mode: req.GetMode(),
			Flags: req.GetFlags(), Policy: req.GetPolicy(),
		}
		g.Go(func() error {
			resp := &txvalidatorv1.ValidateResponse{}
			if err := bus.Request(gctx, c.nc, c.subject, chunk, resp, c.timeout, c.attempts); err != nil {
				return err
			}
			if len(resp.GetResults()) != end-start {
				return fmt.Errorf("validator answered %d results for %d jobs", len(resp.GetResults()), end-start)
			}
			copy(results[start:end], resp.GetResults())
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("script pool: %w", err)
	}
	return &txvalidatorv1.ValidateResponse{Results: results}, nil
}
