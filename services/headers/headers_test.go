package headers

import (
	"bytes"
	"context"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

var regtest = &chaincfg.RegressionNetParams

// harness is one running headers service with a gRPC client.
type harness struct {
	t   *testing.T
	nc  *nats.Conn
	svc *Service
	reg *prometheus.Registry
	cl  headersv1.HeaderServiceClient
}

func newService(t *testing.T, nc *nats.Conn, dir string) (*Service, *prometheus.Registry) {
	t.Helper()
	deps := testenv.Deps(t, nc)
	svc, err := New(Config{DataDir: dir}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return svc, deps.Metrics.(*prometheus.Registry)
}

func dial(t *testing.T, addr string) headersv1.HeaderServiceClient {
	t.Helper()
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return headersv1.NewHeaderServiceClient(cc)
}

// start serves a headers service on dir until the test ends.
func start(t *testing.T, nc *nats.Conn, dir string) *harness {
	t.Helper()
	svc, reg := newService(t, nc, dir)
	addr := testenv.Listener(t)
	testenv.Serve(t, addr, svc)
	return &harness{t: t, nc: nc, svc: svc, reg: reg, cl: dial(t, addr)}
}

// startStoppable serves a headers service on dir and returns a function
// that stops it (closing its store).
func startStoppable(t *testing.T, nc *nats.Conn, dir string) (*harness, func()) {
	t.Helper()
	svc, reg := newService(t, nc, dir)
	addr := testenv.Listener(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, runner.Options{GRPCListen: addr, Registry: prometheus.NewRegistry(),
			Log: testenv.Logger(), Network: "regtest", StopTimeout: 5 * time.Second}, svc)
	}()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("runner stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}
	t.Cleanup(stop)
	return &harness{t: t, nc: nc, svc: svc, reg: reg, cl: dial(t, addr)}, stop
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// mine returns a header on prev that meets its bits.
func mine(prev *wire.BlockHeader, salt byte, mutate func(*wire.BlockHeader)) wire.BlockHeader {
	h := wire.BlockHeader{
		Version:    4,
		PrevBlock:  prev.BlockHash(),
		MerkleRoot: chainhash.Hash{salt, 0xaa},
		Timestamp:  prev.Timestamp.Add(10 * time.Minute),
		Bits:       regtest.PowLimitBits,
	}
	if mutate != nil {
		mutate(&h)
	}
	target := blockchain.CompactToBig(h.Bits)
	for h.Nonce = 0; ; h.Nonce++ {
		hash := h.BlockHash()
		if blockchain.HashToBig(&hash).Cmp(target) <= 0 {
			return h
		}
	}
}

// chainOn mines n headers on prev.
func chainOn(prev wire.BlockHeader, n int, salt byte) []wire.BlockHeader {
	out := make([]wire.BlockHeader, 0, n)
	for range n {
		h := mine(&prev, salt, nil)
		out = append(out, h)
		prev = h
	}
	return out
}

func genesis() wire.BlockHeader { return regtest.GenesisBlock.Header }

func raw(h wire.BlockHeader) []byte {
	var b bytes.Buffer
	if err := h.Serialize(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func hashOf(h wire.BlockHeader) []byte {
	x := h.BlockHash()
	return x[:]
}

func (h *harness) submit(hdrs ...wire.BlockHeader) *headersv1.SubmitHeadersResponse {
	h.t.Helper()
	req := &headersv1.SubmitHeadersRequest{}
	for _, x := range hdrs {
		req.Headers = append(req.Headers, raw(x))
	}
	resp, err := h.cl.SubmitHeaders(ctx(h.t), req)
	if err != nil {
		h.t.Fatalf("SubmitHeaders: %v", err)
	}
	return resp
}

func (h *harness) setStatus(st headersv1.BlockStatus, reason string, hdrs ...wire.BlockHeader) {
	h.t.Helper()
	for _, x := range hdrs {
		if _, err := h.cl.SetBlockStatus(ctx(h.t), &headersv1.SetBlockStatusRequest{Hash: hashOf(x), Status: st, Reason: reason}); err != nil {
			h.t.Fatalf("SetBlockStatus %s: %v", st, err)
		}
	}
}

func (h *harness) get(x wire.BlockHeader) *headersv1.HeaderInfo {
	h.t.Helper()
	resp, err := h.cl.GetHeader(ctx(h.t), &headersv1.GetHeaderRequest{Hash: hashOf(x)})
	if err != nil {
		h.t.Fatalf("GetHeader: %v", err)
	}
	return resp.Info
}

func (h *harness) chainInfo() *headersv1.GetChainInfoResponse {
	h.t.Helper()
	resp, err := h.cl.GetChainInfo(ctx(h.t), &headersv1.GetChainInfoRequest{})
	if err != nil {
		h.t.Fatalf("GetChainInfo: %v", err)
	}
	return resp
}

func (h *harness) plan(maxConnect int32) *headersv1.GetConnectPlanResponse {
	h.t.Helper()
	resp, err := h.cl.GetConnectPlan(ctx(h.t), &headersv1.GetConnectPlanRequest{MaxConnect: maxConnect})
	if err != nil {
		h.t.Fatalf("GetConnectPlan: %v", err)
	}
	return resp
}

func (h *harness) tips() map[string]*headersv1.ChainTip {
	h.t.Helper()
	resp, err := h.cl.GetChainTips(ctx(h.t), &headersv1.GetChainTipsRequest{})
	if err != nil {
		h.t.Fatalf("GetChainTips: %v", err)
	}
	if len(resp.Tips) == 0 || resp.Tips[0].Status != "active" {
		h.t.Fatalf("first tip is not the active one: %v", resp.Tips)
	}
	out := make(map[string]*headersv1.ChainTip)
	for _, tip := range resp.Tips {
		out[string(tip.Hash)] = tip
	}
	return out
}

func (h *harness) subscribe(subject string) *nats.Subscription {
	h.t.Helper()
	sub, err := h.nc.SubscribeSync(subject)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

func next(t *testing.T, sub *nats.Subscription, msg proto.Message) {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no event on %s: %v", sub.Subject, err)
	}
	if err := proto.Unmarshal(m.Data, msg); err != nil {
		t.Fatal(err)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, rule string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if rule == "" {
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
			for _, l := range m.Label {
				if l.GetName() == "rule" && l.GetValue() == rule {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}

func hashes(infos []*headersv1.HeaderInfo) [][]byte {
	out := make([][]byte, len(infos))
	for i, x := range infos {
		out[i] = x.Hash
	}
	return out
}

func hdrHashes(hdrs ...wire.BlockHeader) [][]byte {
	out := make([][]byte, len(hdrs))
	for i, x := range hdrs {
		out[i] = hashOf(x)
	}
	return out
}

func equalHashes(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("%s: got %d hashes %x, want %d %x", what, len(got), got, len(want), want)
	}
}

func reversed(h []wire.BlockHeader) []wire.BlockHeader {
	out := slices.Clone(h)
	slices.Reverse(out)
	return out
}

func TestAcceptChain(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	tipSub := h.subscribe(bus.NewSubjects("regtest").HeaderTip())

	info := h.chainInfo()
	if info.Network != "regtest" || info.Tip.Height != 0 || !bytes.Equal(info.Tip.Hash, regtest.GenesisHash[:]) ||
		info.Tip.Status != statusValid || !info.Tip.OnActiveChain {
		t.Fatalf("fresh store: %+v", info)
	}

	chain := chainOn(genesis(), 20, 1)
	resp := h.submit(chain...)
	if resp.Accepted != 20 || resp.Orphan || resp.RejectRule != "" || len(resp.Results) != 20 {
		t.Fatalf("submit: accepted %d orphan %v reject %q", resp.Accepted, resp.Orphan, resp.RejectRule)
	}
	for i, r := range resp.Results {
		if r.Height != int32(i+1) || r.Status != statusHeaderValid || !bytes.Equal(r.Header, raw(chain[i])) ||
			r.OnActiveChain || len(r.NextHash) != 0 {
			t.Fatalf("result %d: %+v", i, r)
		}
		// Each block adds 2 units of work at regtest's minimum difficulty.
		work := blockchain.CalcWork(regtest.PowLimitBits)
		work.Mul(work, blockchainInt(int64(i+2)))
		if !bytes.Equal(r.ChainWork, work.Bytes()) {
			t.Fatalf("result %d chain work %x, want %x", i, r.ChainWork, work.Bytes())
		}
	}
	// Median time past of block 3 is block 2's time (median of genesis,1,2,3).
	if mtp := resp.Results[2].MedianTimePast; mtp != chain[1].Timestamp.Unix() {
		t.Fatalf("mtp of height 3: %d, want %d", mtp, chain[1].Timestamp.Unix())
	}

	var ev eventsv1.HeaderTip
	next(t, tipSub, &ev)
	if ev.Height != 20 || !bytes.Equal(ev.Hash, hashOf(chain[19])) {
		t.Fatalf("header tip event %+v", &ev)
	}

	// Known headers are accepted again without changes and without events.
	again := h.submit(chain[5:10]...)
	if again.Accepted != 5 || again.Results[0].Height != 6 {
		t.Fatalf("resubmit: %+v", again)
	}
	if m, err := tipSub.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("unexpected header tip event %x", m.Data)
	}

	info = h.chainInfo()
	if info.BestHeader.Height != 20 || info.Tip.Height != 0 || info.VerificationProgress != 0 ||
		info.Difficulty != 1 || !info.InitialBlockDownload {
		t.Fatalf("chain info: best %d tip %d progress %v difficulty %v ibd %v", info.BestHeader.Height,
			info.Tip.Height, info.VerificationProgress, info.Difficulty, info.InitialBlockDownload)
	}
	if got := counterValue(t, h.reg, "btcmesh_headers_accepted_total", ""); got != 20 {
		t.Fatalf("accepted_total %v", got)
	}
	if got := counterValue(t, h.reg, "btcmesh_headers_best_header_height", ""); got != 20 {
		t.Fatalf("best_header_height %v", got)
	}

	missing, err := h.cl.GetMissingBlocks(ctx(t), &headersv1.GetMissingBlocksRequest{MaxBlocks: 5})
	if err != nil {
		t.Fatal(err)
	}
	equalHashes(t, "missing", hashes(missing.Blocks), hdrHashes(chain[:5]...))
	h.setStatus(statusHaveData, "", chain[0], chain[2])
	missing, err = h.cl.GetMissingBlocks(ctx(t), &headersv1.GetMissingBlocksRequest{MaxBlocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	equalHashes(t, "missing after data", hashes(missing.Blocks), hdrHashes(chain[1], chain[3], chain[4]))

	_, err = h.cl.GetHeader(ctx(t), &headersv1.GetHeaderRequest{Hash: make([]byte, 32)})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown hash: %v", err)
	}
	_, err = h.cl.GetHeader(ctx(t), &headersv1.GetHeaderRequest{Hash: []byte{1, 2}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("short hash: %v", err)
	}
	_, err = h.cl.SubmitHeaders(ctx(t), &headersv1.SubmitHeadersRequest{Headers: [][]byte{make([]byte, 79)}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("short header: %v", err)
	}
}

func TestOrphanAndRejections(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	g := genesis()
	chain := chainOn(g, 3, 1)

	resp := h.submit(chain[1:]...)
	if !resp.Orphan || resp.Accepted != 0 {
		t.Fatalf("orphan: %+v", resp)
	}
	if _, err := h.cl.GetHeader(ctx(t), &headersv1.GetHeaderRequest{Hash: hashOf(chain[1])}); status.Code(err) != codes.NotFound {
		t.Fatalf("orphan was stored: %v", err)
	}

	highHash := wire.BlockHeader{Version: 4, PrevBlock: g.BlockHash(), Timestamp: g.Timestamp.Add(time.Minute), Bits: regtest.PowLimitBits}
	target := blockchain.CompactToBig(highHash.Bits)
	for {
		x := highHash.BlockHash()
		if blockchain.HashToBig(&x).Cmp(target) > 0 {
			break
		}
		highHash.Nonce++
	}
	cases := []struct {
		name string
		hdr  wire.BlockHeader
		rule string
	}{
		{"bad pow", highHash, "high-hash"},
		{"bad bits", mine(&g, 2, func(x *wire.BlockHeader) { x.Bits = 0x1f7fffff }), "bad-diffbits"},
		{"too old", mine(&g, 3, func(x *wire.BlockHeader) { x.Timestamp = g.Timestamp }), "time-too-old"},
		{"too new", mine(&g, 4, func(x *wire.BlockHeader) {
			x.Timestamp = time.Unix(time.Now().Add(3*time.Hour).Unix(), 0)
		}), "time-too-new"},
		{"old version", mine(&g, 5, func(x *wire.BlockHeader) { x.Version = 1 }), "bad-version"},
	}
	for _, c := range cases {
		// A good header first: it is kept although a later one is rejected.
		resp := h.submit(chain[0], c.hdr, chain[1])
		if resp.RejectRule != c.rule || resp.Accepted != 1 || resp.RejectDetail == "" {
			t.Fatalf("%s: rule %q (%s) accepted %d, want %q", c.name, resp.RejectRule, resp.RejectDetail, resp.Accepted, c.rule)
		}
		if _, err := h.cl.GetHeader(ctx(t), &headersv1.GetHeaderRequest{Hash: hashOf(c.hdr)}); status.Code(err) != codes.NotFound {
			t.Fatalf("%s: rejected header was stored: %v", c.name, err)
		}
	}
	if got := counterValue(t, h.reg, "btcmesh_headers_rejected_total", "high-hash"); got != 1 {
		t.Fatalf("rejected_total{high-hash} = %v", got)
	}

	// An invalid block: known again is duplicate-invalid, children bad-prevblk.
	h.submit(chain...)
	h.setStatus(statusInvalid, "bad-txnmrklroot", chain[1])
	if info := h.get(chain[2]); info.Status != statusInvalid || info.InvalidReason != "bad-prevblk" {
		t.Fatalf("descendant: %+v", info)
	}
	if resp := h.submit(chain[1]); resp.RejectRule != "duplicate-invalid" {
		t.Fatalf("known invalid: %+v", resp)
	}
	child := mine(&chain[2], 9, nil)
	if resp := h.submit(child); resp.RejectRule != "bad-prevblk" {
		t.Fatalf("child of invalid: %+v", resp)
	}
	if info := h.chainInfo(); info.BestHeader.Height != 1 {
		t.Fatalf("best header after invalidation: %d", info.BestHeader.Height)
	}
}

func TestLocators(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	chain := chainOn(genesis(), 30, 1)
	h.submit(chain...)
	h.setStatus(statusHaveData, "", chain...)
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[29])}); err != nil {
		t.Fatal(err)
	}
	at := func(height int) wire.BlockHeader {
		if height == 0 {
			return genesis()
		}
		return chain[height-1]
	}

	loc, err := h.cl.GetBlockLocator(ctx(t), &headersv1.GetBlockLocatorRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for _, height := range []int{30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 19, 15, 7, 0} {
		want = append(want, hashOf(at(height)))
	}
	equalHashes(t, "locator", loc.Locator, want)

	lh, err := h.cl.LocateHeaders(ctx(t), &headersv1.LocateHeadersRequest{
		Locator: [][]byte{make([]byte, 32), hashOf(at(10)), regtest.GenesisHash[:]}, MaxHeaders: 5})
	if err != nil {
		t.Fatal(err)
	}
	if lh.StartHeight != 11 || len(lh.Headers) != 5 || !bytes.Equal(lh.Headers[0], raw(at(11))) || !bytes.Equal(lh.Headers[4], raw(at(15))) {
		t.Fatalf("locate: start %d, %d headers", lh.StartHeight, len(lh.Headers))
	}
	lh, err = h.cl.LocateHeaders(ctx(t), &headersv1.LocateHeadersRequest{Locator: [][]byte{hashOf(at(10))}, Stop: hashOf(at(12))})
	if err != nil {
		t.Fatal(err)
	}
	if len(lh.Headers) != 2 || !bytes.Equal(lh.Headers[1], raw(at(12))) {
		t.Fatalf("locate with stop: %d headers", len(lh.Headers))
	}
	lh, err = h.cl.LocateHeaders(ctx(t), &headersv1.LocateHeadersRequest{Locator: [][]byte{make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if lh.StartHeight != 1 || len(lh.Headers) != 30 {
		t.Fatalf("locate from genesis: start %d, %d headers", lh.StartHeight, len(lh.Headers))
	}
	lh, err = h.cl.LocateHeaders(ctx(t), &headersv1.LocateHeadersRequest{Stop: hashOf(at(7))})
	if err != nil {
		t.Fatal(err)
	}
	if lh.StartHeight != 7 || len(lh.Headers) != 1 || !bytes.Equal(lh.Headers[0], raw(at(7))) {
		t.Fatalf("locate stop only: start %d, %d headers", lh.StartHeight, len(lh.Headers))
	}

	byHeight, err := h.cl.GetHeadersByHeight(ctx(t), &headersv1.GetHeadersByHeightRequest{Heights: []int32{0, 5, 30}})
	if err != nil {
		t.Fatal(err)
	}
	equalHashes(t, "by height", hashes(byHeight.Infos), hdrHashes(at(0), at(5), at(30)))
	if i := byHeight.Infos[1]; !i.OnActiveChain || !bytes.Equal(i.NextHash, hashOf(at(6))) {
		t.Fatalf("height 5: %+v", i)
	}
	if _, err := h.cl.GetHeadersByHeight(ctx(t), &headersv1.GetHeadersByHeightRequest{Heights: []int32{31}}); status.Code(err) != codes.NotFound {
		t.Fatalf("height 31: %v", err)
	}
	if _, err := h.cl.GetHeadersByHeight(ctx(t), &headersv1.GetHeadersByHeightRequest{Heights: []int32{-1}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("height -1: %v", err)
	}
	gh, err := h.cl.GetHeader(ctx(t), &headersv1.GetHeaderRequest{Height: 30})
	if err != nil || !bytes.Equal(gh.Info.Hash, hashOf(at(30))) || len(gh.Info.NextHash) != 0 {
		t.Fatalf("GetHeader height 30: %v %v", gh, err)
	}
	if info := h.chainInfo(); info.VerificationProgress != 1 || info.Tip.Height != 30 {
		t.Fatalf("chain info %+v", info)
	}
}

func TestForkPlanAndReorg(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	subj := bus.NewSubjects("regtest")
	headerSub := h.subscribe(subj.HeaderTip())
	chainSub := h.subscribe(subj.ChainTip())

	a := chainOn(genesis(), 5, 1) // heights 1..5
	h.submit(a...)
	next(t, headerSub, &eventsv1.HeaderTip{})
	if p := h.plan(0); len(p.ToConnect) != 0 {
		t.Fatalf("plan without data: %d to connect", len(p.ToConnect))
	}
	h.setStatus(statusHaveData, "", a...)
	p := h.plan(0)
	if len(p.ToDisconnect) != 0 || !bytes.Equal(p.Target.Hash, hashOf(a[4])) {
		t.Fatalf("initial plan: %d to disconnect, target %x", len(p.ToDisconnect), p.Target.Hash)
	}
	equalHashes(t, "initial connect", hashes(p.ToConnect), hdrHashes(a...))
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(a[4])}); err != nil {
		t.Fatal(err)
	}
	var ct eventsv1.ChainTip
	next(t, chainSub, &ct)
	if ct.Height != 5 || len(ct.Disconnected) != 0 {
		t.Fatalf("chain tip event %+v", &ct)
	}
	equalHashes(t, "connected", ct.Connected, hdrHashes(a...))
	h.setStatus(statusValid, "", a...)
	h.setStatus(statusHaveData, "", a[4]) // never downgraded
	if info := h.get(a[4]); info.Status != statusValid || !info.OnActiveChain {
		t.Fatalf("a5 after HAVE_DATA: %+v", info)
	}
	if p := h.plan(0); len(p.ToConnect) != 0 || len(p.ToDisconnect) != 0 {
		t.Fatal("plan at the tip is not empty")
	}

	// Fork B from a2 (height 2): b3..b7 has more work.
	b := chainOn(a[1], 5, 2)
	h.submit(b...)
	var ht eventsv1.HeaderTip
	next(t, headerSub, &ht)
	if ht.Height != 7 || !bytes.Equal(ht.Hash, hashOf(b[4])) {
		t.Fatalf("header tip %+v", &ht)
	}
	if p := h.plan(0); len(p.ToConnect) != 0 {
		t.Fatal("plan to blocks without data")
	}
	missing, err := h.cl.GetMissingBlocks(ctx(t), &headersv1.GetMissingBlocksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	equalHashes(t, "missing on fork", hashes(missing.Blocks), hdrHashes(b...))
	tips := h.tips()
	if tip := tips[string(hashOf(b[4]))]; tip.Status != "headers-only" || tip.BranchLen != 5 || tip.Height != 7 {
		t.Fatalf("b7 tip %+v", tip)
	}
	if tip := tips[string(hashOf(a[4]))]; tip.Status != "active" || tip.BranchLen != 0 {
		t.Fatalf("a5 tip %+v", tip)
	}

	h.setStatus(statusHaveData, "", b[:4]...) // b3..b6
	p = h.plan(0)
	equalHashes(t, "disconnect", hashes(p.ToDisconnect), hdrHashes(a[4], a[3], a[2]))
	equalHashes(t, "connect", hashes(p.ToConnect), hdrHashes(b[:4]...))
	if !bytes.Equal(p.Target.Hash, hashOf(b[3])) {
		t.Fatal("target is not b6")
	}
	p = h.plan(2)
	equalHashes(t, "capped connect", hashes(p.ToConnect), hdrHashes(b[:2]...))
	h.setStatus(statusHaveData, "", b[4])
	if tip := h.tips()[string(hashOf(b[4]))]; tip.Status != "valid-headers" {
		t.Fatalf("b7 with data: %+v", tip)
	}

	// b5 invalid: b6, b7 follow; the best header returns to a5 and B
	// leaves the plan (b4 has less work than a5).
	h.setStatus(statusInvalid, "bad-txns-inputs-missingorspent", b[2])
	next(t, headerSub, &ht)
	if ht.Height != 5 || !bytes.Equal(ht.Hash, hashOf(a[4])) {
		t.Fatalf("header tip after invalidation %+v", &ht)
	}
	for _, x := range b[3:] {
		if info := h.get(x); info.Status != statusInvalid || info.InvalidReason != "bad-prevblk" {
			t.Fatalf("descendant %+v", info)
		}
	}
	if info := h.get(b[2]); info.InvalidReason != "bad-txns-inputs-missingorspent" {
		t.Fatalf("b5 %+v", info)
	}
	if p := h.plan(0); len(p.ToConnect) != 0 || len(p.ToDisconnect) != 0 {
		t.Fatalf("plan after invalidation: %d/%d", len(p.ToDisconnect), len(p.ToConnect))
	}
	if tip := h.tips()[string(hashOf(b[4]))]; tip.Status != "invalid" {
		t.Fatalf("b7 after invalidation %+v", tip)
	}

	// Fork C from a3: c4..c7 with data; reorg to it.
	c := chainOn(a[2], 4, 3)
	h.submit(c...)
	next(t, headerSub, &ht)
	h.setStatus(statusHaveData, "", c...)
	p = h.plan(0)
	equalHashes(t, "disconnect to c", hashes(p.ToDisconnect), hdrHashes(a[4], a[3]))
	equalHashes(t, "connect c", hashes(p.ToConnect), hdrHashes(c...))
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(c[3])}); err != nil {
		t.Fatal(err)
	}
	next(t, chainSub, &ct)
	if ct.Height != 7 || !bytes.Equal(ct.Hash, hashOf(c[3])) {
		t.Fatalf("reorg event %+v", &ct)
	}
	equalHashes(t, "reorg disconnected", ct.Disconnected, hdrHashes(a[4], a[3]))
	equalHashes(t, "reorg connected", ct.Connected, hdrHashes(c...))
	if info := h.get(a[3]); info.OnActiveChain {
		t.Fatal("a4 still active")
	}
	if info := h.get(a[2]); !bytes.Equal(info.NextHash, hashOf(c[0])) {
		t.Fatal("a3's next is not c4")
	}
	tips = h.tips()
	if len(tips) != 3 {
		t.Fatalf("%d tips", len(tips))
	}
	if tip := tips[string(hashOf(a[4]))]; tip.Status != "valid-fork" || tip.BranchLen != 2 {
		t.Fatalf("a5 tip %+v", tip)
	}
	if tip := tips[string(hashOf(c[3]))]; tip.Status != "active" {
		t.Fatalf("c7 tip %+v", tip)
	}

	// Blocks without data cannot become the tip.
	d := mine(&c[3], 4, nil)
	h.submit(d)
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(d)}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("SetActiveTip header-only: %v", err)
	}
}

func TestRestartRestoresIndex(t *testing.T) {
	nc := testenv.NATS(t)
	dir := t.TempDir()
	h, stop := startStoppable(t, nc, dir)
	chain := chainOn(genesis(), 10, 1)
	h.submit(chain...)
	h.setStatus(statusHaveData, "", chain...)
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[7])}); err != nil {
		t.Fatal(err)
	}
	h.setStatus(statusInvalid, "bad-txnmrklroot", chain[9])
	fork := chainOn(chain[4], 2, 7) // heights 6, 7: header only
	h.submit(fork...)
	before := h.tips()
	stop()

	h = start(t, nc, dir)
	info := h.chainInfo()
	if info.Tip.Height != 8 || !bytes.Equal(info.Tip.Hash, hashOf(chain[7])) {
		t.Fatalf("tip after restart: %d", info.Tip.Height)
	}
	if info.BestHeader.Height != 9 || !bytes.Equal(info.BestHeader.Hash, hashOf(chain[8])) {
		t.Fatalf("best after restart: %d", info.BestHeader.Height)
	}
	if i := h.get(chain[9]); i.Status != statusInvalid || i.InvalidReason != "bad-txnmrklroot" {
		t.Fatalf("invalid entry after restart: %+v", i)
	}
	if i := h.get(chain[3]); !i.OnActiveChain || i.Status != statusHaveData || !bytes.Equal(i.NextHash, hashOf(chain[4])) {
		t.Fatalf("active entry after restart: %+v", i)
	}
	if i := h.get(fork[1]); i.Height != 7 || i.Status != statusHeaderValid || i.OnActiveChain {
		t.Fatalf("fork entry after restart: %+v", i)
	}
	after := h.tips()
	if len(after) != len(before) {
		t.Fatalf("tips: %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if !proto.Equal(v, after[k]) {
			t.Fatalf("tip %x: before %+v after %+v", k, v, after[k])
		}
	}
	p := h.plan(0)
	equalHashes(t, "plan after restart", hashes(p.ToConnect), hdrHashes(chain[8]))
	if resp := h.submit(mine(&chain[9], 1, nil)); resp.RejectRule != "bad-prevblk" {
		t.Fatalf("child of invalid after restart: %+v", resp)
	}
	if got := counterValue(t, h.reg, "btcmesh_headers_active_tip_height", ""); got != 8 {
		t.Fatalf("active_tip_height %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil {
		t.Fatal("empty DataDir accepted")
	}
	if err := (&Config{DataDir: "x"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func blockchainInt(v int64) *big.Int { return big.NewInt(v) }

// TestEqualWorkPlanPrefersFirstStored: after a reorg onto an equal-work
// branch fails halfway, the plan leads back to the branch whose data was
// stored first (Core's nSequenceId rule), and never to a later one.
func TestEqualWorkPlanPrefersFirstStored(t *testing.T) {
	h := start(t, testenv.NATS(t), t.TempDir())
	a := chainOn(genesis(), 3, 1) // a1..a3
	h.submit(a...)
	h.setStatus(statusHaveData, "", a...)
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(a[2])}); err != nil {
		t.Fatal(err)
	}
	h.setStatus(statusValid, "", a...)
	// b3 (equal work to a3, stored later) is no reason to move.
	b := chainOn(a[1], 2, 2) // b3, b4
	h.submit(b...)
	h.setStatus(statusHaveData, "", b...)
	p := h.plan(0)
	equalHashes(t, "disconnect to b4", hashes(p.ToDisconnect), hdrHashes(a[2]))
	equalHashes(t, "connect b", hashes(p.ToConnect), hdrHashes(b...))
	// b3 connects, b4 turns out invalid: the tip is b3, equal in work
	// to a3, whose data came first, so the plan returns to a3.
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(b[0])}); err != nil {
		t.Fatal(err)
	}
	h.setStatus(statusValid, "", b[0])
	h.setStatus(statusInvalid, "bad-cb-amount", b[1])
	p = h.plan(0)
	equalHashes(t, "back to a3: disconnect", hashes(p.ToDisconnect), hdrHashes(b[0]))
	equalHashes(t, "back to a3: connect", hashes(p.ToConnect), hdrHashes(a[2]))
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(a[2])}); err != nil {
		t.Fatal(err)
	}
	if p := h.plan(0); len(p.ToConnect) != 0 || len(p.ToDisconnect) != 0 {
		t.Fatalf("plan at a3 (b3 has equal work, stored later): %d/%d", len(p.ToDisconnect), len(p.ToConnect))
	}
}

// TestSetActiveTipMarkValid checks that SetActiveTip with mark_valid
// records the tip and full validity in one durable write, and refuses a
// block marked invalid.
func TestSetActiveTipMarkValid(t *testing.T) {
	nc := testenv.NATS(t)
	dir := t.TempDir()
	h, stop := startStoppable(t, nc, dir)
	chain := chainOn(genesis(), 3, 1)
	h.submit(chain...)
	h.setStatus(statusHaveData, "", chain...)
	resp, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[1]), MarkValid: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Tip.Status != statusValid || resp.Tip.Height != 2 {
		t.Fatalf("tip %+v", resp.Tip)
	}
	// Every block the call made active is marked, not only the tip.
	if st := h.get(chain[0]).Status; st != statusValid {
		t.Fatalf("block 1 made active with the tip is %s, want VALID", st)
	}
	// The same tip again still marks it.
	if resp, err = h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[1]), MarkValid: true}); err != nil || resp.Tip.Status != statusValid {
		t.Fatalf("again: %v %+v", err, resp.GetTip())
	}
	h.setStatus(statusInvalid, "bad-txnmrklroot", chain[2])
	if _, err := h.cl.SetActiveTip(ctx(t), &headersv1.SetActiveTipRequest{Hash: hashOf(chain[2]), MarkValid: true}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("invalid block: %v", err)
	}
	stop()
	h = start(t, nc, dir)
	if i := h.get(chain[1]); i.Status != statusValid || !i.OnActiveChain {
		t.Fatalf("after restart: %+v", i)
	}
	if i := h.get(chain[0]); i.Status != statusValid {
		t.Fatalf("block made active with the tip not marked valid after restart: %+v", i)
	}
}

// TestHaveDataBatch marks several stored blocks HAVE_DATA in one call
// (more_hashes); they survive a restart, and more_hashes is refused with
// any other status or an unknown hash.
func TestHaveDataBatch(t *testing.T) {
	nc := testenv.NATS(t)
	dir := t.TempDir()
	h, stop := startStoppable(t, nc, dir)
	chain := chainOn(genesis(), 4, 1)
	h.submit(chain...)
	req := &headersv1.SetBlockStatusRequest{Hash: hashOf(chain[0]), Status: statusHaveData}
	for _, x := range chain[1:] {
		req.MoreHashes = append(req.MoreHashes, hashOf(x))
	}
	if _, err := h.cl.SetBlockStatus(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	bad := &headersv1.SetBlockStatusRequest{Hash: hashOf(chain[0]), Status: statusValid, MoreHashes: [][]byte{hashOf(chain[1])}}
	if _, err := h.cl.SetBlockStatus(ctx(t), bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("more_hashes with VALID: %v", err)
	}
	unknown := mine(&chain[3], 9, nil)
	bad = &headersv1.SetBlockStatusRequest{Hash: hashOf(chain[0]), Status: statusHaveData, MoreHashes: [][]byte{hashOf(unknown)}}
	if _, err := h.cl.SetBlockStatus(ctx(t), bad); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown hash in more_hashes: %v", err)
	}
	stop()
	h = start(t, nc, dir)
	for i, x := range chain {
		if st := h.get(x).Status; st != statusHaveData {
			t.Fatalf("block %d after restart: %s", i, st)
		}
	}
	if p := h.plan(10); len(p.ToConnect) != len(chain) {
		t.Fatalf("connect plan has %d blocks, want %d", len(p.ToConnect), len(chain))
	}
}
