package txvalidator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/scriptpool"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestScriptPool drives the worker through internal/scriptpool, the client
// the mempool and the block path use, with enough jobs to be split over
// several requests and two workers in the queue group.
func TestScriptPool(t *testing.T) {
	e := startEnv(t, Config{SigCacheEntries: 1000, Workers: 2})
	// A second worker in the same queue group on its own connection.
	second, err := New(Config{SigCacheEntries: 1000, Workers: 2}, testenv.Deps(t, e.nc))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, testenv.Listener(t), second)

	alice, bob := newWallet(7), newWallet(8)
	const jobs = 150
	req := &txvalidatorv1.ValidateRequest{Context: testContext(), Mode: txvalidatorv1.Mode_MODE_FULL, Policy: true}
	want := make([]string, jobs)
	for i := range jobs {
		k := []kind{p2pkh, p2wpkh, p2tr}[i%3]
		c := fundingCoin(alice, k, uint32(i), 100_000)
		spec := txSpec{coins: []coin{c, fundingCoin(alice, p2wpkh, uint32(1000+i), 20_000)}, outs: []*wire.TxOut{out(t, bob, p2tr, 100_000)}}
		switch i {
		case 7:
			spec.coins[0].coinbase, spec.coins[0].height = true, testHeight-1
			want[i] = string(rules.PrematureCoinbaseSpend)
		case 64: // first job of the second chunk
			spec.outs[0].Value = 200_000
			want[i] = string(rules.InBelowOut)
		}
		tx, j := build(t, spec)
		if i == 130 {
			corruptSig(t, tx, 1)
			j.Tx = serialize(t, tx)
			want[i] = string(rules.ScriptFailed)
		}
		req.Jobs = append(req.Jobs, j)
	}
	subjects := bus.NewSubjects(e.deps.Network.Name)
	client := scriptpool.New(e.nc, subjects, 10*time.Second, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.Validate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != jobs {
		t.Fatalf("%d results", len(resp.GetResults()))
	}
	for i, r := range resp.GetResults() {
		if want[i] == "" {
			wantValid(t, r)
			if r.GetFee() != 20_000 {
				t.Errorf("job %d fee %d", i, r.GetFee())
			}
			continue
		}
		wantRule(t, r, want[i])
	}
	if f := resp.GetResults()[130].GetFailedInput(); f != 1 {
		t.Errorf("job 130 failed_input %d, want 1", f)
	}

	// The same request over gRPC gives the same answers.
	grpcResp := e.validate(t, req)
	for i := range jobs {
		if !proto.Equal(grpcResp.GetResults()[i], resp.GetResults()[i]) {
			t.Errorf("job %d: gRPC %v, NATS %v", i, grpcResp.GetResults()[i], resp.GetResults()[i])
		}
	}

	// A malformed request gets an immediate answer naming the problem.
	bad := &txvalidatorv1.ValidateRequest{Context: testContext(), Jobs: []*txvalidatorv1.TxJob{{Tx: req.Jobs[0].Tx}}}
	data, err := proto.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.nc.RequestWithContext(ctx, subjects.ScriptValidate(), data)
	if err != nil {
		t.Fatal(err)
	}
	if h := msg.Header.Get(ErrorHeader); !strings.Contains(h, "prevouts") {
		t.Errorf("error header %q", h)
	}
	if _, err := client.Validate(ctx, bad); err == nil {
		t.Error("scriptpool accepted a malformed request")
	}
}

// TestDrainOnShutdown checks that a request in flight when the service
// stops is still answered.
func TestDrainOnShutdown(t *testing.T) {
	nc := testenv.NATS(t)
	deps := testenv.Deps(t, nc)
	svc, err := New(Config{SigCacheEntries: 0, Workers: 1}, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}

	alice, bob := newWallet(9), newWallet(10)
	var coins []coin
	for i := range 300 {
		coins = append(coins, fundingCoin(alice, p2pkh, uint32(i), 1000))
	}
	_, j := build(t, txSpec{coins: coins, outs: []*wire.TxOut{out(t, bob, p2wpkh, 250_000)}})
	data, err := proto.Marshal(&txvalidatorv1.ValidateRequest{Context: testContext(), Mode: txvalidatorv1.Mode_MODE_SCRIPTS_ONLY, Jobs: []*txvalidatorv1.TxJob{j}})
	if err != nil {
		t.Fatal(err)
	}
	reply := make(chan *nats.Msg, 1)
	inbox := nats.NewInbox()
	sub, err := nc.ChanSubscribe(inbox, reply)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(bus.NewSubjects(deps.Network.Name).ScriptValidate(), inbox, data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the worker pick it up
	stop()
	select {
	case m := <-reply:
		resp := &txvalidatorv1.ValidateResponse{}
		if err := proto.Unmarshal(m.Data, resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.GetResults()) != 1 || !resp.GetResults()[0].GetValid() {
			t.Fatalf("reply %v", resp)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight request not answered after shutdown began")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
