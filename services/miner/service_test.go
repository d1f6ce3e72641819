package miner

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	eventsv1 "github.com/btcmesh/btcmesh/proto/btcmesh/events/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// fakeChain stands in for headers, utxostore and blockvalidator: a
// regtest chain in memory that accepts blocks passing btcd's sanity,
// BIP34 and witness-commitment checks, stores them in the block store and
// publishes chain-tip events. It exists so the miner's wiring can be
// tested alone; the lead's end-to-end tests use the real services.
type fakeChain struct {
	nc     *nats.Conn
	subj   bus.Subjects
	params *chaincfg.Params
	ready  *runner.ReadySignal
	store  *blockstore.Store

	mu      sync.Mutex
	headers []wire.BlockHeader
	hashes  []chainhash.Hash
	utxos   map[wire.OutPoint]*utxostorev1.Utxo
	blocks  map[chainhash.Hash]*wire.MsgBlock
}

func newFakeChain(nc *nats.Conn, params *chaincfg.Params) *fakeChain {
	return &fakeChain{nc: nc, subj: bus.NewSubjects("regtest"), params: params, ready: runner.NewReadySignal(),
		headers: []wire.BlockHeader{params.GenesisBlock.Header}, hashes: []chainhash.Hash{*params.GenesisHash},
		utxos: map[wire.OutPoint]*utxostorev1.Utxo{}, blocks: map[chainhash.Hash]*wire.MsgBlock{}}
}

func (f *fakeChain) Name() string           { return "fakechain" }
func (f *fakeChain) Ready() <-chan struct{} { return f.ready.C() }
func (f *fakeChain) RegisterGRPC(s grpc.ServiceRegistrar) {
	headersv1.RegisterHeaderServiceServer(s, fakeHeaders{f: f})
	utxostorev1.RegisterUtxoStoreServiceServer(s, fakeUtxos{f: f})
	blockvalidatorv1.RegisterBlockValidatorServiceServer(s, fakeValidator{f: f})
}
func (f *fakeChain) Run(ctx context.Context) error {
	js, err := jetstream.New(f.nc)
	if err != nil {
		return err
	}
	if f.store, err = blockstore.Open(ctx, js, f.subj.BlockBucket(), 1, nil); err != nil {
		return err
	}
	// The txvalidator pool: fee = in - out; lock_time 999 is "rejected".
	sub, err := f.nc.QueueSubscribe(f.subj.ScriptValidate(), bus.ValidatorQueue, func(m *nats.Msg) {
		req := &txvalidatorv1.ValidateRequest{}
		_ = proto.Unmarshal(m.Data, req)
		resp := &txvalidatorv1.ValidateResponse{}
		for _, job := range req.GetJobs() {
			tx, _ := decodeTx(job.GetTx())
			var in, out int64
			for _, p := range job.GetPrevouts() {
				in += p.GetOutput().GetValue()
			}
			for _, o := range tx.TxOut {
				out += o.Value
			}
			r := &txvalidatorv1.TxResult{Valid: true, Fee: in - out, Weight: weightOf(tx), SigopCost: 4, FailedInput: -1}
			if tx.LockTime == 999 || in < out {
				r = &txvalidatorv1.TxResult{Rejection: &commonv1.Rejection{Rule: "non-final-test", Detail: "test rejection"}, FailedInput: -1}
			}
			resp.Results = append(resp.Results, r)
		}
		data, _ := proto.Marshal(resp)
		_ = m.Respond(data)
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	f.ready.Set()
	<-ctx.Done()
	return nil
}

func (f *fakeChain) info(h int) *headersv1.HeaderInfo {
	var buf bytes.Buffer
	_ = f.headers[h].Serialize(&buf)
	var ts []int64
	for i := max(0, h-10); i <= h; i++ {
		ts = append(ts, f.headers[i].Timestamp.Unix())
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
	return &headersv1.HeaderInfo{Hash: f.hashes[h][:], Height: int32(h), Header: buf.Bytes(),
		MedianTimePast: ts[len(ts)/2], OnActiveChain: true, Status: headersv1.BlockStatus_BLOCK_STATUS_VALID}
}

// connect applies a block and publishes the chain-tip event.
func (f *fakeChain) connect(ctx context.Context, block *wire.MsgBlock) error {
	hash := block.BlockHash()
	f.mu.Lock()
	height := int32(len(f.headers))
	for i, tx := range block.Transactions {
		for _, in := range tx.TxIn {
			delete(f.utxos, in.PreviousOutPoint)
		}
		for j, out := range tx.TxOut {
			op := wire.OutPoint{Hash: tx.TxHash(), Index: uint32(j)}
			f.utxos[op] = &utxostorev1.Utxo{Outpoint: &commonv1.OutPoint{Txid: op.Hash[:], Index: op.Index}, Found: true,
				Output: &commonv1.TxOut{Value: out.Value, PkScript: out.PkScript}, Height: height, Coinbase: i == 0}
		}
	}
	f.headers = append(f.headers, block.Header)
	f.hashes = append(f.hashes, hash)
	f.blocks[hash] = block
	f.mu.Unlock()
	raw, err := serializeBlock(block)
	if err != nil {
		return err
	}
	if err := f.store.Put(ctx, hash, raw); err != nil {
		return err
	}
	return bus.Publish(f.nc, f.subj.ChainTip(), &eventsv1.ChainTip{Hash: hash[:], Height: height, Connected: [][]byte{hash[:]}})
}

type fakeHeaders struct {
	headersv1.UnimplementedHeaderServiceServer
	f *fakeChain
}

func (h fakeHeaders) GetChainInfo(context.Context, *headersv1.GetChainInfoRequest) (*headersv1.GetChainInfoResponse, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	tip := h.f.info(len(h.f.headers) - 1)
	return &headersv1.GetChainInfoResponse{Network: "regtest", Tip: tip, BestHeader: tip}, nil
}

func (h fakeHeaders) GetHeadersByHeight(_ context.Context, req *headersv1.GetHeadersByHeightRequest) (*headersv1.GetHeadersByHeightResponse, error) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	out := &headersv1.GetHeadersByHeightResponse{}
	for _, ht := range req.GetHeights() {
		if int(ht) >= len(h.f.headers) || ht < 0 {
			return nil, status.Errorf(codes.NotFound, "no block at %d", ht)
		}
		out.Infos = append(out.Infos, h.f.info(int(ht)))
	}
	return out, nil
}

type fakeUtxos struct {
	utxostorev1.UnimplementedUtxoStoreServiceServer
	f *fakeChain
}

func (u fakeUtxos) GetUtxos(_ context.Context, req *utxostorev1.GetUtxosRequest) (*utxostorev1.GetUtxosResponse, error) {
	u.f.mu.Lock()
	defer u.f.mu.Unlock()
	out := &utxostorev1.GetUtxosResponse{TipHash: u.f.hashes[len(u.f.hashes)-1][:], TipHeight: int32(len(u.f.hashes) - 1)}
	for _, op := range req.GetOutpoints() {
		var w wire.OutPoint
		copy(w.Hash[:], op.GetTxid())
		w.Index = op.GetIndex()
		if got, ok := u.f.utxos[w]; ok {
			out.Utxos = append(out.Utxos, got)
		} else {
			out.Utxos = append(out.Utxos, &utxostorev1.Utxo{Outpoint: op})
		}
	}
	return out, nil
}

type fakeValidator struct {
	blockvalidatorv1.UnimplementedBlockValidatorServiceServer
	f *fakeChain
}

func (v fakeValidator) SubmitBlock(ctx context.Context, req *blockvalidatorv1.SubmitBlockRequest) (*blockvalidatorv1.SubmitBlockResponse, error) {
	block := &wire.MsgBlock{}
	if err := block.Deserialize(bytes.NewReader(req.GetBlock())); err != nil {
		return nil, rules.InvalidArgument("bad block: %v", err)
	}
	reject := func(err error) (*blockvalidatorv1.SubmitBlockResponse, error) {
		k, _ := rules.KindOf(err)
		return &blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED,
			RejectReason: string(k), RejectDetail: err.Error()}, nil
	}
	blk := btcutil.NewBlock(block)
	if err := blockchain.CheckBlockSanity(blk, v.f.params.PowLimit, fixedTime{time.Now()}); err != nil {
		return reject(err)
	}
	if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
		return reject(err)
	}
	v.f.mu.Lock()
	height := int32(len(v.f.headers))
	tip := v.f.hashes[len(v.f.hashes)-1]
	v.f.mu.Unlock()
	if block.Header.PrevBlock != tip {
		return reject(rules.New("prev-blk-not-best", "not on tip"))
	}
	if err := blockchain.CheckSerializedHeight(blk.Transactions()[0], height); err != nil {
		return reject(err)
	}
	if err := v.f.connect(ctx, block); err != nil {
		return nil, err
	}
	hash := block.BlockHash()
	return &blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED,
		Hash: hash[:], TipHash: hash[:], TipHeight: height}, nil
}

// harness serves a miner with the fake chain.
type harness struct {
	t      *testing.T
	nc     *nats.Conn
	chain  *fakeChain
	miner  *Service
	client minerv1.MinerServiceClient
	addr   string // a regtest address of ours
	script []byte
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	nc := testenv.NATS(t)
	deps := testenv.Deps(t, nc)
	addr := testenv.Listener(t)
	cfg := DefaultConfig()
	cfg.HeadersAddr, cfg.UtxoStoreAddr, cfg.BlockValidatorAddr = addr, addr, addr
	cfg.Workers = 2
	cfg.ScriptTimeout = 5 * time.Second
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeChain(nc, deps.Network.Params)
	testenv.Serve(t, addr, fc, m)
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	a, err := address.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{7}, 20), deps.Network.Params)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, nc: nc, chain: fc, miner: m, client: minerv1.NewMinerServiceClient(cc), addr: a.EncodeAddress()}
	h.script = append([]byte{0x00, 0x14}, bytes.Repeat([]byte{7}, 20)...)
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) submit(tx *wire.MsgTx, maxFeeRate int64) (*minerv1.SubmitTransactionResponse, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		h.t.Fatal(err)
	}
	return h.client.SubmitTransaction(h.ctx(), &minerv1.SubmitTransactionRequest{Tx: buf.Bytes(), MaxFeeRate: maxFeeRate})
}

func wantRule(t *testing.T, err error, kind rules.Kind) {
	t.Helper()
	re, ok := rules.FromStatus(err)
	if !ok || re.Kind != kind {
		t.Fatalf("error %v, want rule %q", err, kind)
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("code %v, want FailedPrecondition", status.Code(err))
	}
}

// spend builds a transaction spending ops (worth in) to one output worth in-fee.
func spend(ops []wire.OutPoint, in, fee int64, outs int) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for _, op := range ops {
		tx.AddTxIn(wire.NewTxIn(&op, []byte{0x51}, nil))
	}
	for range outs {
		tx.AddTxOut(wire.NewTxOut((in-fee)/int64(outs), []byte{0x51}))
	}
	return tx
}

func TestServiceMempoolAndMining(t *testing.T) {
	h := newHarness(t)
	accepted, err := h.nc.SubscribeSync(bus.NewSubjects("regtest").TxAccepted())
	if err != nil {
		t.Fatal(err)
	}

	// Mine 101 blocks so that block 1's coinbase matures.
	gen, err := h.client.Generate(h.ctx(), &minerv1.GenerateRequest{Blocks: 101, Address: h.addr})
	if err != nil {
		t.Fatal(err)
	}
	if len(gen.GetHashes()) != 101 {
		t.Fatalf("mined %d blocks, want 101", len(gen.GetHashes()))
	}
	h.chain.mu.Lock()
	cb1 := h.chain.blocks[h.chain.hashes[1]].Transactions[0]
	cb2 := h.chain.blocks[h.chain.hashes[2]].Transactions[0]
	if !bytes.Equal(cb1.TxOut[0].PkScript, h.script) {
		h.chain.mu.Unlock()
		t.Fatal("coinbase does not pay to the address")
	}
	if got := h.chain.hashes[101]; !bytes.Equal(got[:], gen.GetHashes()[100]) {
		h.chain.mu.Unlock()
		t.Fatal("last hash is not the chain tip")
	}
	h.chain.mu.Unlock()
	value := cb1.TxOut[0].Value

	// Wrong arguments.
	if _, err := h.client.Generate(h.ctx(), &minerv1.GenerateRequest{Blocks: 1, Address: "nonsense"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad address: %v", err)
	}
	if _, err := h.client.Generate(h.ctx(), &minerv1.GenerateRequest{Blocks: 1, Address: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("mainnet address: %v", err)
	}

	// Accept a spend of block 1's coinbase.
	op1 := wire.OutPoint{Hash: cb1.TxHash(), Index: 0}
	tx1 := spend([]wire.OutPoint{op1}, value, 20_000, 2)
	resp, err := h.submit(tx1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetFee() != 20_000 || !bytes.Equal(resp.GetTxid(), hashBytes(tx1.TxHash())) {
		t.Fatalf("response %v", resp)
	}
	msg, err := accepted.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no tx.accepted event: %v", err)
	}
	ev := &eventsv1.TxAccepted{}
	if err := proto.Unmarshal(msg.Data, ev); err != nil || !bytes.Equal(ev.GetTxid(), resp.GetTxid()) || ev.GetFeeRate() <= 0 {
		t.Fatalf("event %v %v", ev, err)
	}

	// Rejections.
	_, err = h.submit(tx1, 0)
	wantRule(t, err, rules.AlreadyInMempool)
	_, err = h.submit(spend([]wire.OutPoint{op1}, value, 30_000, 1), 0)
	wantRule(t, err, rules.MempoolConflict)
	_, err = h.submit(spend([]wire.OutPoint{confirmedOutpoint(9)}, value, 30_000, 1), 0)
	wantRule(t, err, rules.MissingInputs)
	op2 := wire.OutPoint{Hash: cb2.TxHash(), Index: 0}
	_, err = h.submit(spend([]wire.OutPoint{op2}, value, 10, 1), 0)
	wantRule(t, err, rules.MinRelayFee)
	_, err = h.submit(spend([]wire.OutPoint{op2}, value, value/2, 1), 0)
	wantRule(t, err, rules.MaxFeeExceeded)
	bad := spend([]wire.OutPoint{op2}, value, 10_000, 1)
	bad.LockTime = 999
	_, err = h.submit(bad, 0)
	wantRule(t, err, "non-final-test")
	_, err = h.submit(cb2, 0)
	wantRule(t, err, kindCoinbase)
	if _, err := h.client.SubmitTransaction(h.ctx(), &minerv1.SubmitTransactionRequest{Tx: []byte{1, 2, 3}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("garbage: %v", err)
	}

	// A child of tx1 with a high fee: the package outranks a richer lone tx.
	tx2 := spend([]wire.OutPoint{{Hash: tx1.TxHash(), Index: 0}}, tx1.TxOut[0].Value, 200_000, 1)
	if _, err := h.submit(tx2, 0); err != nil {
		t.Fatal(err)
	}
	mp, err := h.client.GetMempool(h.ctx(), &minerv1.GetMempoolRequest{IncludeTx: true})
	if err != nil || len(mp.GetEntries()) != 2 {
		t.Fatalf("mempool %v %v", mp, err)
	}
	for _, e := range mp.GetEntries() {
		if bytes.Equal(e.GetTxid(), hashBytes(tx2.TxHash())) &&
			(len(e.GetDepends()) != 1 || !bytes.Equal(e.GetDepends()[0], hashBytes(tx1.TxHash())) || len(e.GetTx()) == 0) {
			t.Fatalf("tx2 entry %v", e)
		}
	}
	states, err := h.client.CheckOutpoints(h.ctx(), &minerv1.CheckOutpointsRequest{Outpoints: []*commonv1.OutPoint{
		{Txid: op1.Hash[:], Index: 0}, {Txid: hashBytes(tx1.TxHash()), Index: 1}, {Txid: op2.Hash[:], Index: 0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := states.GetStates()
	if !s[0].GetSpent() || s[0].GetCreated() || s[1].GetSpent() || !s[1].GetCreated() ||
		s[1].GetOutput().GetValue() != tx1.TxOut[1].Value || s[2].GetSpent() || s[2].GetCreated() {
		t.Fatalf("outpoint states %v", s)
	}

	tmpl, err := h.client.GetBlockTemplate(h.ctx(), &minerv1.GetBlockTemplateRequest{PkScript: h.script})
	if err != nil {
		t.Fatal(err)
	}
	block := &wire.MsgBlock{}
	if err := block.Deserialize(bytes.NewReader(tmpl.GetBlock())); err != nil {
		t.Fatal(err)
	}
	if tmpl.GetHeight() != 102 || tmpl.GetFees() != 220_000 || len(block.Transactions) != 3 ||
		block.Transactions[1].TxHash() != tx1.TxHash() || block.Transactions[2].TxHash() != tx2.TxHash() {
		t.Fatalf("template height %d fees %d txs %d", tmpl.GetHeight(), tmpl.GetFees(), len(block.Transactions))
	}
	if err := blockchain.ValidateWitnessCommitment(btcutil.NewBlock(block)); err != nil {
		t.Fatal(err)
	}

	// Mining empties the mempool at once.
	if _, err := h.client.Generate(h.ctx(), &minerv1.GenerateRequest{Blocks: 1, Address: h.addr}); err != nil {
		t.Fatal(err)
	}
	mp, err = h.client.GetMempool(h.ctx(), &minerv1.GetMempoolRequest{})
	if err != nil || len(mp.GetEntries()) != 0 {
		t.Fatalf("mempool after mining: %v %v", mp, err)
	}

	// A relayed tx enters; a block double-spending it (from elsewhere)
	// takes it out through the chain-tip event.
	tx3 := spend([]wire.OutPoint{op2}, value, 5_000, 1)
	var buf bytes.Buffer
	_ = tx3.Serialize(&buf)
	if err := bus.Publish(h.nc, bus.NewSubjects("regtest").TxReceived(), &eventsv1.TxReceived{Tx: buf.Bytes(), Source: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.mempoolSize() == 1 })
	rival := spend([]wire.OutPoint{op2}, value, 7_000, 1)
	t3, err := h.miner.buildTemplate(h.ctx(), h.script)
	if err != nil {
		t.Fatal(err)
	}
	other, err := assembleBlock(h.chain.params, mustTip(t, h), t3.block.Header.Bits, true, h.script, 5, []*wire.MsgTx{rival}, 7_000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := solveBlock(h.ctx(), other.block, other.height, 1, 1_000_000, func() uint64 { return 6 }); !ok || err != nil {
		t.Fatal("cannot solve rival block")
	}
	if err := h.chain.connect(h.ctx(), other.block); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.mempoolSize() == 0 })
}

func mustTip(t *testing.T, h *harness) tipInfo {
	tip, err := h.miner.chainTip(h.ctx(), true)
	if err != nil {
		t.Fatal(err)
	}
	return tip
}

func (h *harness) mempoolSize() int {
	h.miner.mu.Lock()
	defer h.miner.mu.Unlock()
	return len(h.miner.pool.entries)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not met in 10s"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hashBytes(h chainhash.Hash) []byte { return h[:] }
