package blockvalidator

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// connectRecorder answers ConnectBlock as a utxostore that holds no
// preparation (prepared_hash: NotFound) and records what it was sent.
type connectRecorder struct {
	utxostorev1.UtxoStoreServiceClient
	reqs []*utxostorev1.ConnectBlockRequest
}

func (r *connectRecorder) ConnectBlock(_ context.Context, req *utxostorev1.ConnectBlockRequest, _ ...grpc.CallOption) (*utxostorev1.ConnectBlockResponse, error) {
	r.reqs = append(r.reqs, req)
	if len(req.GetPreparedHash()) > 0 {
		return nil, status.Error(codes.NotFound, "not prepared")
	}
	return &utxostorev1.ConnectBlockResponse{}, nil
}

// TestCommitFallsBackToChanges checks what commit sends: the name of a
// prepared block, then its changes when the store no longer holds the
// preparation; the changes at once for a block not prepared.
func TestCommitFallsBackToChanges(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := &connectRecorder{}
	s := &Service{utxo: rec, metrics: m, log: testenv.Logger()}
	b := makeBlock(time.Now(), coinbaseTx(t, 5, 50e8), spendTx(wire.OutPoint{Hash: chainhash.Hash{7}}, 1))
	c := loadedCand(*b.Hash(), 5, b, nil)

	if err := s.commit(context.Background(), c, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(rec.reqs) != 2 || string(rec.reqs[0].GetPreparedHash()) != string(c.hash[:]) || rec.reqs[0].GetChanges() != nil ||
		rec.reqs[1].GetChanges() == nil || len(rec.reqs[1].GetPreparedHash()) != 0 || rec.reqs[1].GetHeight() != 5 {
		t.Fatalf("prepared commit sent %v", rec.reqs)
	}
	if tip, height := s.tip(); tip != c.hash || height != 5 {
		t.Fatalf("tip %s/%d after commit, want the block at 5", tip, height)
	}

	rec.reqs = nil
	if err := s.commit(context.Background(), c, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(rec.reqs) != 1 || rec.reqs[0].GetChanges() == nil || len(rec.reqs[0].GetPreparedHash()) != 0 {
		t.Fatalf("unprepared commit sent %v", rec.reqs)
	}
}
