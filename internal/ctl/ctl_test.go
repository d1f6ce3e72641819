package ctl

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	minerv1 "github.com/btcmesh/btcmesh/proto/btcmesh/miner/v1"
	nodev1 "github.com/btcmesh/btcmesh/proto/btcmesh/node/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// runCtl runs the command line and returns exit code, stdout and stderr.
func runCtl(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// serializeBlock returns a block's bytes.
func serializeBlock(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestArgumentErrors(t *testing.T) {
	// Nothing listens here; argument errors must be caught before any call.
	rpc := "--rpc=127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no verb", []string{rpc}, "too few parameters"},
		{"unknown verb", []string{rpc, "getfoo"}, `unknown command "getfoo"`},
		{"too few", []string{rpc, "getblockhash"}, "getblockhash takes 1 argument, got 0"},
		{"too many", []string{rpc, "getblockcount", "1"}, "getblockcount takes 0 arguments, got 1"},
		{"bad number", []string{rpc, "getblockhash", "abc"}, "HEIGHT must be an integer"},
		{"bad bool", []string{rpc, "getblockheader", strings.Repeat("00", 32), "maybe"}, "VERBOSE must be true or false"},
		{"short hash", []string{rpc, "getblock", "abc"}, "error code: -8\nerror message:\nblockhash must be of length 64 (not 3, for 'abc')"},
		{"non-hex hash", []string{rpc, "gettxout", strings.Repeat("zz", 32), "0"}, "error code: -8\nerror message:\ntxid must be hexadecimal string"},
		{"bad tx hex", []string{rpc, "sendrawtransaction", "0g"}, "error code: -22\nerror message:\nTX decode failed"},
		{"undecodable tx", []string{rpc, "sendrawtransaction", "0100"}, "error code: -22\nerror message:\nTX decode failed"},
		{"bad block hex", []string{rpc, "submitblock", "xyz"}, "error code: -22\nerror message:\nBlock decode failed"},
		{"bad fee rate", []string{rpc, "sendrawtransaction", txHex(t), "lots"}, "error code: -3\nerror message:\nInvalid amount"},
		{"bad address", []string{rpc, "generatetoaddress", "1", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"}, "error code: -5\nerror message:\nError: Invalid address"},
		{"bad addnode command", []string{rpc, "addnode", "1.2.3.4:8333", "maybe"}, "add, remove or onetry"},
		{"disconnect both", []string{rpc, "disconnectnode", "1.2.3.4:8333", "3"}, "error code: -32602"},
		{"bad network", []string{"--network=moon", "getblockcount"}, "unknown network"},
		{"bad rpc", []string{"--rpc=nonsense", "getblockcount"}, "--rpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, "", tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", code, errOut)
			}
			if out != "" {
				t.Fatalf("stdout %q, want nothing", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr %q does not contain %q", errOut, tc.want)
			}
		})
	}
}

// txHex is the test segwit transaction in hex.
func txHex(t *testing.T) string {
	var buf bytes.Buffer
	if err := segwitTx(t).Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes())
}

func TestHelp(t *testing.T) {
	code, out, _ := runCtl(t, "", "help")
	if code != 0 || !strings.Contains(out, "getblockchaininfo") || !strings.Contains(out, "submitblock HEXDATA") {
		t.Fatalf("help: exit %d, %q", code, out)
	}
	code, out, _ = runCtl(t, "", "help", "gettxout")
	if code != 0 || !strings.Contains(out, "TXID N [INCLUDE_MEMPOOL=true]") {
		t.Fatalf("help gettxout: exit %d, %q", code, out)
	}
}

func TestStdinArguments(t *testing.T) {
	hexTx := txHex(t)
	code, out, errOut := runCtl(t, hexTx+"\n", "--rpc=127.0.0.1:1", "-stdin", "decoderawtransaction")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"txid": "`+segwitTx(t).TxHash().String()+`"`) {
		t.Fatalf("decoded output %s", out)
	}
	// Lines longer than any scanner buffer (a 4 MB block is 8 MB of hex),
	// CRLF endings and a last line without newline.
	long := strings.Repeat("ab", 5<<20)
	got, err := readStdinArgs(strings.NewReader(long + "\r\nx\ny"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != long || got[1] != "x" || got[2] != "y" {
		t.Fatalf("readStdinArgs: %d args", len(got))
	}
	// Stdin arguments count against the verb's arity.
	code, _, errOut = runCtl(t, "a\nb\n", "--rpc=127.0.0.1:1", "-stdin", "decoderawtransaction")
	if code != 1 || !strings.Contains(errOut, "takes 1 argument, got 2") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestAmounts(t *testing.T) {
	for sats, want := range map[int64]string{
		0: "0.00000000", 1: "0.00000001", 5000000000: "50.00000000", 123456789: "1.23456789",
		-150000000: "-1.50000000", 2100000000000000: "21000000.00000000",
	} {
		if got := formatBTC(sats); got != want {
			t.Errorf("formatBTC(%d) = %s, want %s", sats, got, want)
		}
	}
	for in, want := range map[string]int64{"0.1": 10000000, "1": 100000000, ".5": 50000000, "0.00000001": 1, "21000000": 2100000000000000, "-0.5": -50000000} {
		got, err := parseBTC(in)
		if err != nil || got != want {
			t.Errorf("parseBTC(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "1.000000001", "abc", "1e-3", "21000001", "1.2.3"} {
		if _, err := parseBTC(in); err == nil {
			t.Errorf("parseBTC(%q) succeeded", in)
		}
	}
}

func TestOutputFormatting(t *testing.T) {
	for _, tc := range []struct {
		val  any
		want string
	}{
		{nil, ""},
		{"00ab", "00ab\n"},
		{int32(7), "7\n"},
		{true, "true\n"},
		{[]string{}, "[]\n"},
		{[]string{"a", "b"}, "[\n  \"a\",\n  \"b\"\n]\n"},
		{object{{"value", btc(100000000)}, {"s", "<&>"}, {"f", 0.5}}, "{\n  \"value\": 1.00000000,\n  \"s\": \"<&>\",\n  \"f\": 0.5\n}\n"},
	} {
		var buf bytes.Buffer
		if err := printResult(&buf, tc.val); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("printResult(%#v) = %q, want %q", tc.val, buf.String(), tc.want)
		}
	}
}

// --- fake node ---

type fakeHeaders struct {
	headersv1.UnimplementedHeaderServiceServer
	genesis *headersv1.HeaderInfo
}

func (f *fakeHeaders) GetChainInfo(context.Context, *headersv1.GetChainInfoRequest) (*headersv1.GetChainInfoResponse, error) {
	return &headersv1.GetChainInfoResponse{Network: "regtest", Tip: f.genesis, BestHeader: f.genesis, VerificationProgress: 1}, nil
}

func (f *fakeHeaders) GetHeader(_ context.Context, r *headersv1.GetHeaderRequest) (*headersv1.GetHeaderResponse, error) {
	if (len(r.Hash) == 0 && r.Height == 0) || bytes.Equal(r.Hash, f.genesis.Hash) {
		return &headersv1.GetHeaderResponse{Info: f.genesis}, nil
	}
	return nil, status.Error(codes.NotFound, "unknown block")
}

type fakeBV struct {
	blockvalidatorv1.UnimplementedBlockValidatorServiceServer
	block  []byte
	submit *blockvalidatorv1.SubmitBlockResponse
}

func (f *fakeBV) GetBlock(context.Context, *blockvalidatorv1.GetBlockRequest) (*blockvalidatorv1.GetBlockResponse, error) {
	return &blockvalidatorv1.GetBlockResponse{Block: f.block}, nil
}

func (f *fakeBV) SubmitBlock(context.Context, *blockvalidatorv1.SubmitBlockRequest) (*blockvalidatorv1.SubmitBlockResponse, error) {
	return f.submit, nil
}

type fakeMiner struct {
	minerv1.UnimplementedMinerServiceServer
	submitErr error
	states    map[uint32]*minerv1.OutpointState
}

func (f *fakeMiner) SubmitTransaction(_ context.Context, r *minerv1.SubmitTransactionRequest) (*minerv1.SubmitTransactionResponse, error) {
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	tx, err := decodeTx(r.Tx)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "bad tx")
	}
	h := tx.TxHash()
	return &minerv1.SubmitTransactionResponse{Txid: h[:]}, nil
}

func (f *fakeMiner) CheckOutpoints(_ context.Context, r *minerv1.CheckOutpointsRequest) (*minerv1.CheckOutpointsResponse, error) {
	resp := &minerv1.CheckOutpointsResponse{}
	for _, op := range r.Outpoints {
		st := f.states[op.Index]
		if st == nil {
			st = &minerv1.OutpointState{}
		}
		resp.States = append(resp.States, st)
	}
	return resp, nil
}

type fakeUtxo struct {
	utxostorev1.UnimplementedUtxoStoreServiceServer
	tip []byte
}

// GetUtxos knows output 0 of any transaction, created at height 0.
func (f *fakeUtxo) GetUtxos(_ context.Context, r *utxostorev1.GetUtxosRequest) (*utxostorev1.GetUtxosResponse, error) {
	resp := &utxostorev1.GetUtxosResponse{TipHash: f.tip, TipHeight: 0}
	for _, op := range r.Outpoints {
		u := &utxostorev1.Utxo{Outpoint: op}
		if op.Index == 0 {
			u.Found, u.Coinbase, u.Height = true, true, 0
			u.Output = &commonv1.TxOut{Value: 5000000000, PkScript: chaincfg.RegressionNetParams.GenesisBlock.Transactions[0].TxOut[0].PkScript}
		}
		resp.Utxos = append(resp.Utxos, u)
	}
	return resp, nil
}

type fakeNode struct {
	nodev1.UnimplementedNodeServiceServer
}

func (fakeNode) Stop(context.Context, *nodev1.StopRequest) (*nodev1.StopResponse, error) {
	return &nodev1.StopResponse{Message: "btcmesh stopping"}, nil
}

type fakeNet struct {
	addr  string
	bv    *fakeBV
	miner *fakeMiner
}

// startFake serves the fake services on loopback.
func startFake(t *testing.T) *fakeNet {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	var hdr bytes.Buffer
	if err := params.GenesisBlock.Header.Serialize(&hdr); err != nil {
		t.Fatal(err)
	}
	gh := params.GenesisBlock.BlockHash()
	genesis := &headersv1.HeaderInfo{
		Hash: gh[:], Height: 0, Header: hdr.Bytes(), ChainWork: []byte{2},
		Status: headersv1.BlockStatus_BLOCK_STATUS_VALID, MedianTimePast: params.GenesisBlock.Header.Timestamp.Unix(),
		OnActiveChain: true,
	}
	f := &fakeNet{
		bv:    &fakeBV{block: serializeBlock(t, params.GenesisBlock)},
		miner: &fakeMiner{states: map[uint32]*minerv1.OutpointState{}},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	headersv1.RegisterHeaderServiceServer(srv, &fakeHeaders{genesis: genesis})
	blockvalidatorv1.RegisterBlockValidatorServiceServer(srv, f.bv)
	minerv1.RegisterMinerServiceServer(srv, f.miner)
	utxostorev1.RegisterUtxoStoreServiceServer(srv, &fakeUtxo{tip: gh[:]})
	nodev1.RegisterNodeServiceServer(srv, fakeNode{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	f.addr = lis.Addr().String()
	return f
}

func TestChainVerbs(t *testing.T) {
	f := startFake(t)
	rpc := "--rpc=" + f.addr
	genesisHash := chaincfg.RegressionNetParams.GenesisHash.String()

	code, out, errOut := runCtl(t, "", rpc, "getblockcount")
	if code != 0 || out != "0\n" {
		t.Fatalf("getblockcount: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCtl(t, "", rpc, "getbestblockhash")
	if code != 0 || out != genesisHash+"\n" {
		t.Fatalf("getbestblockhash: %d %q", code, out)
	}
	code, out, _ = runCtl(t, "", rpc, "getblockhash", "0")
	if code != 0 || out != genesisHash+"\n" {
		t.Fatalf("getblockhash 0: %d %q", code, out)
	}
	code, _, errOut = runCtl(t, "", rpc, "getblockhash", "5")
	if code != 1 || errOut != "error code: -8\nerror message:\nBlock height out of range\n" {
		t.Fatalf("getblockhash 5: %d %q", code, errOut)
	}
	code, out, _ = runCtl(t, "", rpc, "getblock", genesisHash, "2")
	if code != 0 || out != regtestGenesisJSON {
		t.Fatalf("getblock 2: %d\n%s", code, out)
	}
	code, out, _ = runCtl(t, "", rpc, "getblock", genesisHash, "0")
	if code != 0 || out != hex.EncodeToString(f.bv.block)+"\n" {
		t.Fatalf("getblock 0: %d %q", code, out)
	}
	code, _, errOut = runCtl(t, "", rpc, "getblock", strings.Repeat("11", 32))
	if code != 1 || errOut != "error code: -5\nerror message:\nBlock not found\n" {
		t.Fatalf("getblock unknown: %d %q", code, errOut)
	}
	code, out, _ = runCtl(t, "", rpc, "getblockheader", genesisHash)
	if code != 0 || !strings.Contains(out, `"nTx": 1`) || strings.Contains(out, `"tx"`) || !strings.Contains(out, `"confirmations": 1,`) {
		t.Fatalf("getblockheader: %d %s", code, out)
	}
	code, out, _ = runCtl(t, "", rpc, "getblockheader", genesisHash, "false")
	if code != 0 || len(strings.TrimSpace(out)) != 160 {
		t.Fatalf("getblockheader false: %d %q", code, out)
	}
	code, out, _ = runCtl(t, "", rpc, "getblockchaininfo")
	for _, want := range []string{`"chain": "regtest"`, `"blocks": 0`, `"bestblockhash": "` + genesisHash, `"difficulty": 4.656542373906925e-10`,
		`"chainwork": "0000000000000000000000000000000000000000000000000000000000000002"`, `"pruned": false`, `"warnings": ""`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("getblockchaininfo lacks %s: %s", want, out)
		}
	}
	code, out, _ = runCtl(t, "", rpc, "stop")
	if code != 0 || out != "btcmesh stopping\n" {
		t.Fatalf("stop: %d %q", code, out)
	}
}

func TestSubmitBlockResults(t *testing.T) {
	f := startFake(t)
	blockHex := hex.EncodeToString(f.bv.block)
	for _, tc := range []struct {
		resp *blockvalidatorv1.SubmitBlockResponse
		want string
	}{
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED}, ""},
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE}, "duplicate\n"},
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID}, "duplicate-invalid\n"},
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN}, "inconclusive\n"},
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN}, "prev-blk-not-found\n"},
		{&blockvalidatorv1.SubmitBlockResponse{Result: blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED, RejectReason: "bad-cb-amount"}, "bad-cb-amount\n"},
	} {
		f.bv.submit = tc.resp
		// Through -stdin, as a large block would be.
		code, out, errOut := runCtl(t, blockHex+"\n", "--rpc="+f.addr, "-stdin", "submitblock")
		if code != 0 || out != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.resp.Result, code, out, errOut, tc.want)
		}
	}
}

func TestSendRawTransactionErrors(t *testing.T) {
	f := startFake(t)
	rpc := "--rpc=" + f.addr
	txh := txHex(t)
	code, out, _ := runCtl(t, "", rpc, "sendrawtransaction", txh)
	if code != 0 || out != segwitTx(t).TxHash().String()+"\n" {
		t.Fatalf("accepted: %d %q", code, out)
	}
	for _, tc := range []struct {
		err  error
		want string
		code int
	}{
		{rules.ToStatus(rules.New(rules.InBelowOut, "value in 1 < value out 2")), "error code: -26\nerror message:\nbad-txns-in-belowout (value in 1 < value out 2)\n", 1},
		{rules.ToStatus(rules.New(rules.ScriptFailed, "OP_EQUALVERIFY failed")), "error code: -26\nerror message:\nmandatory-script-verify-flag-failed (OP_EQUALVERIFY failed)\n", 1},
		{rules.ToStatus(&rules.RuleError{Kind: rules.MissingInputs}), "error code: -25\nerror message:\nbad-txns-inputs-missingorspent\n", 1},
		{rules.ToStatus(rules.New(rules.AlreadyInMempool, "")), "", 0},
		{status.Error(codes.Unavailable, "connection refused"), "error: Could not connect to the server " + f.addr, 1},
	} {
		f.miner.submitErr = tc.err
		code, out, errOut := runCtl(t, "", rpc, "sendrawtransaction", txh, "0.5")
		if code != tc.code || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%v: exit %d stderr %q; want %d %q", tc.err, code, errOut, tc.code, tc.want)
		}
		if tc.code == 0 && out != segwitTx(t).TxHash().String()+"\n" {
			t.Errorf("already in mempool must print the txid, got %q", out)
		}
	}
}

func TestGetTxOut(t *testing.T) {
	f := startFake(t)
	rpc := "--rpc=" + f.addr
	txid := chainhash.Hash{7}.String()

	code, out, _ := runCtl(t, "", rpc, "gettxout", txid, "0")
	want := `{
  "bestblock": "` + chaincfg.RegressionNetParams.GenesisHash.String() + `",
  "confirmations": 1,
  "value": 50.00000000,
  "scriptPubKey": {
    "asm": "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f OP_CHECKSIG",
    "desc": "pk(04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f)#vlz6ztea",
    "hex": "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac",
    "type": "pubkey"
  },
  "coinbase": true
}
`
	if code != 0 || out != want {
		t.Fatalf("gettxout confirmed: %d\n%s", code, out)
	}
	// Spent by a mempool transaction: null, unless the mempool is ignored.
	f.miner.states[0] = &minerv1.OutpointState{Spent: true}
	if code, out, _ = runCtl(t, "", rpc, "gettxout", txid, "0"); code != 0 || out != "" {
		t.Fatalf("spent in mempool: %d %q", code, out)
	}
	if code, out, _ = runCtl(t, "", rpc, "gettxout", txid, "0", "false"); code != 0 || out == "" {
		t.Fatalf("include_mempool=false: %d %q", code, out)
	}
	// Created by a mempool transaction: confirmations 0.
	p2wpkh, _ := hex.DecodeString("0014751e76e8199196d454941c45d1b3a323f1433bd6")
	f.miner.states[1] = &minerv1.OutpointState{Created: true, Output: &commonv1.TxOut{Value: 2500, PkScript: p2wpkh}}
	code, out, _ = runCtl(t, "", rpc, "gettxout", txid, "1")
	if code != 0 || !strings.Contains(out, `"confirmations": 0,`) || !strings.Contains(out, `"value": 0.00002500,`) ||
		!strings.Contains(out, `"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"`) || !strings.Contains(out, `"coinbase": false`) {
		t.Fatalf("created in mempool: %d %s", code, out)
	}
	// Unknown output: prints nothing.
	if code, out, _ = runCtl(t, "", rpc, "gettxout", txid, "2"); code != 0 || out != "" {
		t.Fatalf("unknown: %d %q", code, out)
	}
}

func TestConnectionErrors(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()

	start := time.Now()
	code, _, errOut := runCtl(t, "", "--rpc="+dead, "getblockcount")
	if code != 1 || !strings.HasPrefix(errOut, "error: Could not connect to the server "+dead) {
		t.Fatalf("dead server: %d %q", code, errOut)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("failing took %s; it must fail fast", time.Since(start))
	}

	// Per-service override: headers live elsewhere than --rpc.
	f := startFake(t)
	code, out, errOut := runCtl(t, "", "--rpc="+dead, "--rpc-headers="+f.addr, "getblockcount")
	if code != 0 || out != "0\n" {
		t.Fatalf("--rpc-headers: %d %q %q", code, out, errOut)
	}
	// A service the address does not serve.
	code, _, errOut = runCtl(t, "", "--rpc="+f.addr, "getpeerinfo")
	if code != 1 || !strings.Contains(errOut, "error code: -32601") {
		t.Fatalf("unserved p2p: %d %q", code, errOut)
	}
	// Environment override of --rpc.
	t.Setenv("BTCMESH_RPC", f.addr)
	code, out, _ = runCtl(t, "", "getblockcount")
	if code != 0 || out != "0\n" {
		t.Fatalf("BTCMESH_RPC: %d %q", code, out)
	}
}

func TestMempoolVerbosePackages(t *testing.T) {
	parent := segwitTx(t) // signals replaceability (sequence 0xfffffffd)
	var praw bytes.Buffer
	_ = parent.Serialize(&praw)
	ph := parent.TxHash()
	child := wire.NewMsgTx(2)
	child.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&ph, 0), nil, nil))
	child.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	var craw bytes.Buffer
	_ = child.Serialize(&craw)
	ch := child.TxHash()
	entries := []*minerv1.MempoolEntry{
		{Txid: ph[:], Wtxid: ph[:], Fee: 1000, Vsize: 200, Weight: 800, Tx: praw.Bytes()},
		{Txid: ch[:], Wtxid: ch[:], Fee: 500, Vsize: 100, Weight: 400, Depends: [][]byte{ph[:]}, Tx: craw.Bytes()},
	}
	o := mempoolVerbose(entries)
	p := o.get(ph.String()).(object)
	c := o.get(ch.String()).(object)
	if p.get("descendantcount") != 2 || p.get("descendantsize") != int64(300) || p.get("ancestorcount") != 1 {
		t.Fatalf("parent package: %v", p)
	}
	if c.get("ancestorcount") != 2 || c.get("ancestorsize") != int64(300) || c.get("descendantcount") != 1 {
		t.Fatalf("child package: %v", c)
	}
	if fees := c.get("fees").(object); fees.get("ancestor") != btc(1500) || fees.get("base") != btc(500) {
		t.Fatalf("child fees: %v", fees)
	}
	if d := c.get("depends").([]string); len(d) != 1 || d[0] != ph.String() {
		t.Fatalf("depends: %v", d)
	}
	if s := p.get("spentby").([]string); len(s) != 1 || s[0] != ch.String() {
		t.Fatalf("spentby: %v", s)
	}
	// The child does not signal itself but inherits replaceability.
	if p.get("bip125-replaceable") != true || c.get("bip125-replaceable") != true {
		t.Fatalf("replaceable: %v %v", p.get("bip125-replaceable"), c.get("bip125-replaceable"))
	}
}
