package scriptpool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestCountRetries: a worker that drops its first request makes the
// client send it again, and the retry is counted by subject and reason;
// a second client on the same registry shares the counter.
func TestCountRetries(t *testing.T) {
	nc := testenv.NATS(t)
	subjects := bus.NewSubjects("regtest")
	var seen atomic.Int32
	sub, err := nc.Subscribe(subjects.ScriptValidate(), func(m *nats.Msg) {
		if seen.Add(1) == 1 {
			return // lost with a dying worker
		}
		req := &txvalidatorv1.ValidateRequest{}
		if err := proto.Unmarshal(m.Data, req); err != nil {
			t.Error(err)
			return
		}
		resp := &txvalidatorv1.ValidateResponse{}
		for range req.GetJobs() {
			resp.Results = append(resp.Results, &txvalidatorv1.TxResult{Valid: true})
		}
		data, _ := proto.Marshal(resp)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	reg := prometheus.NewRegistry()
	c := New(nc, subjects, 300*time.Millisecond, 3)
	if err := c.CountRetries(reg); err != nil {
		t.Fatal(err)
	}
	if err := New(nc, subjects, time.Second, 3).CountRetries(reg); err != nil {
		t.Fatalf("second client on the same registry: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Validate(ctx, &txvalidatorv1.ValidateRequest{Jobs: []*txvalidatorv1.TxJob{jobWith(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != 1 || !resp.GetResults()[0].GetValid() {
		t.Fatalf("results %v", resp.GetResults())
	}
	if n := testutil.CollectAndCount(reg, "btcmesh_bus_request_retries_total"); n != 3 {
		t.Errorf("%d retry series, want 3 (one per reason, from the start)", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["subject"] != subjects.ScriptValidate() {
				t.Errorf("retry series with subject %q", labels["subject"])
			}
			got[labels["reason"]] = m.GetCounter().GetValue()
		}
	}
	if got[bus.RetryTimeout] != 1 || got[bus.RetryNoResponders] != 0 || got[bus.RetryError] != 0 {
		t.Errorf("retries by reason %v, want one timeout", got)
	}
}
