package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sync/errgroup"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"

	"github.com/btcmesh/btcmesh/internal/teststack"
	"github.com/btcmesh/btcmesh/services/miner"
)

// mesh is btcmesh's block path (internal/teststack), plus the miner for
// the mempool rows.
type mesh struct {
	bv      blockvalidatorv1.BlockValidatorServiceClient
	miner   minerv1.MinerServiceClient
	headers headersv1.HeaderServiceClient
	// bvMetrics is the blockvalidator's registry, for the phase split.
	bvMetrics prometheus.Gatherer
}

// histSum returns the sum of the histogram called name (0 when absent).
func (m *mesh) histSum(t testing.TB, name string) time.Duration {
	t.Helper()
	return time.Duration(m.metric(t, name).GetHistogram().GetSampleSum() * float64(time.Second))
}

// counter returns the value of the counter called name (0 when absent).
func (m *mesh) counter(t testing.TB, name string) float64 {
	t.Helper()
	return m.metric(t, name).GetCounter().GetValue()
}

// gauge returns the value of the gauge called name (0 when absent).
func (m *mesh) gauge(t testing.TB, name string) float64 {
	t.Helper()
	return m.metric(t, name).GetGauge().GetValue()
}

// metric returns the first series of the blockvalidator's metric called
// name (nil when absent).
func (m *mesh) metric(t testing.TB, name string) *dto.Metric {
	t.Helper()
	mfs, err := m.bvMetrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0]
		}
	}
	return nil
}

// phases are cumulative blockvalidator timings.
type phases struct{ connect, txs time.Duration }

func (m *mesh) phases(t testing.TB) phases {
	return phases{
		connect: m.histSum(t, "btcmesh_blockvalidator_connect_seconds"),
		txs:     m.histSum(t, "btcmesh_blockvalidator_tx_validation_seconds"),
	}
}

// startMesh starts the block path and the miner: wired as separate pods
// (services over loopback gRPC, scripts through the NATS pool), or with
// node as `btcmesh node` wires them in one process.
func startMesh(t testing.TB, node bool) *mesh {
	t.Helper()
	st := teststack.New
	if node {
		st = teststack.NewNode
	}
	stack := st(t)
	mcfg := miner.DefaultConfig()
	mcfg.HeadersAddr, mcfg.UtxoStoreAddr, mcfg.BlockValidatorAddr = stack.Addr, stack.Addr, stack.Addr
	mn, err := miner.New(mcfg, stack.Deps(t))
	if err != nil {
		t.Fatal(err)
	}
	cc := stack.Serve(t, mn)
	return &mesh{bv: blockvalidatorv1.NewBlockValidatorServiceClient(cc), miner: minerv1.NewMinerServiceClient(cc),
		headers: headersv1.NewHeaderServiceClient(cc), bvMetrics: stack.BlockValidatorMetrics}
}

// submitHeaders announces blocks' headers (headers-first sync).
func (m *mesh) submitHeaders(t testing.TB, blocks []*wire.MsgBlock) {
	t.Helper()
	req := &headersv1.SubmitHeadersRequest{}
	for _, b := range blocks {
		var buf bytes.Buffer
		if err := b.Header.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		req.Headers = append(req.Headers, buf.Bytes())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := m.headers.SubmitHeaders(ctx, req)
	if err != nil || resp.GetRejectRule() != "" || resp.GetOrphan() {
		t.Fatalf("btcmesh SubmitHeaders: %v %s %v", err, resp.GetRejectRule(), resp.GetOrphan())
	}
}

// store submits a block whose parent's data is missing: it is stored,
// and waits on a side branch.
func (m *mesh) store(t testing.TB, raw []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := m.bv.SubmitBlock(ctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw})
	if err != nil {
		t.Fatalf("btcmesh SubmitBlock: %v", err)
	}
	if resp.GetResult() != blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN {
		t.Fatalf("btcmesh SubmitBlock of a block ahead of its parent: %s %s", resp.GetResult(), resp.GetRejectReason())
	}
}

// submitResp sends a serialized block and returns the answer.
func (m *mesh) submitResp(t testing.TB, raw []byte) *blockvalidatorv1.SubmitBlockResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := m.bv.SubmitBlock(ctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw})
	if err != nil {
		t.Fatalf("btcmesh SubmitBlock: %v", err)
	}
	return resp
}

// submit sends a serialized block and fails unless it becomes the tip.
func (m *mesh) submit(t testing.TB, raw []byte) {
	t.Helper()
	resp := m.submitResp(t, raw)
	if resp.GetResult() != blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED {
		t.Fatalf("btcmesh SubmitBlock: %s %s %s", resp.GetResult(), resp.GetRejectReason(), resp.GetRejectDetail())
	}
}

// mempool submits txs through MinerService.SubmitTransaction, several at
// a time (they do not depend on each other).
func (m *mesh) mempool(t testing.TB, txs []*wire.MsgTx) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, tx := range txs {
		raw := serializeTx(t, tx)
		g.Go(func() error {
			_, err := m.miner.SubmitTransaction(gctx, &minerv1.SubmitTransactionRequest{Tx: raw})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("miner SubmitTransaction: %v", err)
	}
}
