package blockimport

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
)

var (
	testNet     = chaincfg.RegressionNetParams.Net
	testGenesis = *chaincfg.RegressionNetParams.GenesisHash
)

// testChain returns n blocks on top of the regtest genesis (no proof of
// work: the fake validator does not check it).
func testChain(t *testing.T, n int) []*wire.MsgBlock {
	t.Helper()
	prev := testGenesis
	out := make([]*wire.MsgBlock, 0, n)
	for i := range n {
		cb := wire.NewMsgTx(1)
		cb.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, 0xffffffff), []byte{byte(i), byte(i >> 8), 0x51}, nil))
		cb.AddTxOut(wire.NewTxOut(50e8, []byte{0x51}))
		b := wire.NewMsgBlock(wire.NewBlockHeader(4, &prev, &chainhash.Hash{}, 0x207fffff, uint32(i)))
		if err := b.AddTransaction(cb); err != nil {
			t.Fatal(err)
		}
		b.Header.MerkleRoot = cb.TxHash()
		out = append(out, b)
		prev = b.BlockHash()
	}
	return out
}

func raw(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func record(payload []byte) []byte {
	out := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(out, uint32(testNet))
	binary.LittleEndian.PutUint32(out[4:], uint32(len(payload)))
	return append(out, payload...)
}

func writeFile(t *testing.T, name string, parts ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, bytes.Join(parts, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReaderResyncs reads records around every kind of damage and checks
// which blocks come out and what is reported where.
func TestReaderResyncs(t *testing.T) {
	blocks := testChain(t, 4)
	junk := []byte("junk!junk!")
	badLen := record(bytes.Repeat([]byte{1}, 10)) // length 10 < 80
	notBlock := record(bytes.Repeat([]byte{0xff}, 120))
	r0, r1, r2 := record(raw(t, blocks[0])), record(raw(t, blocks[1])), record(raw(t, blocks[2]))
	truncated := record(raw(t, blocks[3]))[:60]
	f1 := writeFile(t, "blk00000.dat", r0, junk, r1, badLen, notBlock, r2, make([]byte, 100))
	f2 := writeFile(t, "blk00001.dat", r2, truncated)

	rd := NewReader([]string{f1, f2}, testNet)
	defer rd.Close()
	var got []chainhash.Hash
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rec.Decode(); err != nil {
			if err := rd.Resync(rec, err); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got = append(got, rec.Hash)
	}
	want := []chainhash.Hash{blocks[0].BlockHash(), blocks[1].BlockHash(), blocks[2].BlockHash(), blocks[2].BlockHash()}
	if len(got) != len(want) {
		t.Fatalf("got %d blocks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("block %d: got %s, want %s", i, got[i], want[i])
		}
	}
	off := func(parts ...[]byte) int64 { return int64(len(bytes.Join(parts, nil))) }
	wantProblems := []Problem{
		{Kind: ProblemJunk, Path: f1, Offset: off(r0), Length: int64(len(junk))},
		{Kind: ProblemBadLength, Path: f1, Offset: off(r0, junk, r1), Length: 8},
		{Kind: ProblemJunk, Path: f1, Offset: off(r0, junk, r1) + 8, Length: int64(len(badLen)) - 8},
		{Kind: ProblemUndecodable, Path: f1, Offset: off(r0, junk, r1, badLen), Length: int64(len(notBlock))},
		{Kind: ProblemTruncated, Path: f2, Offset: off(r2), Length: int64(len(truncated))},
	}
	ps := rd.Problems()
	if len(ps) != len(wantProblems) {
		t.Fatalf("problems: %+v", ps)
	}
	for i, w := range wantProblems {
		p := ps[i]
		if p.Kind != w.Kind || p.Path != w.Path || p.Offset != w.Offset || p.Length != w.Length {
			t.Errorf("problem %d = %s %s @%d len %d, want %s @%d len %d", i, p.Kind, p.Path, p.Offset, p.Length, w.Kind, w.Offset, w.Length)
		}
	}
	if rd.PaddingBytes() != 100 {
		t.Errorf("padding = %d, want 100", rd.PaddingBytes())
	}
	if total := off(r0, junk, r1, badLen, notBlock, r2, make([]byte, 100), r2, truncated); rd.BytesRead() != total {
		t.Errorf("bytes read = %d, want %d", rd.BytesRead(), total)
	}
}

// fakeNode is a block index plus a validator that refuses blocks whose
// parent it does not have, so the importer's ordering is checked.
type fakeNode struct {
	headersv1.HeaderServiceClient
	blockvalidatorv1.BlockValidatorServiceClient
	status    map[chainhash.Hash]headersv1.BlockStatus
	height    map[chainhash.Hash]int32
	reject    map[chainhash.Hash]bool
	submitted []chainhash.Hash
	tip       chainhash.Hash
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		status: map[chainhash.Hash]headersv1.BlockStatus{testGenesis: headersv1.BlockStatus_BLOCK_STATUS_VALID},
		height: map[chainhash.Hash]int32{testGenesis: 0}, reject: map[chainhash.Hash]bool{}, tip: testGenesis,
	}
}

func (f *fakeNode) GetHeader(_ context.Context, req *headersv1.GetHeaderRequest, _ ...grpc.CallOption) (*headersv1.GetHeaderResponse, error) {
	h := hashOf(req.GetHash())
	st, ok := f.status[h]
	if !ok {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return &headersv1.GetHeaderResponse{Info: &headersv1.HeaderInfo{Hash: h[:], Status: st, Height: f.height[h]}}, nil
}

func (f *fakeNode) GetChainInfo(context.Context, *headersv1.GetChainInfoRequest, ...grpc.CallOption) (*headersv1.GetChainInfoResponse, error) {
	return &headersv1.GetChainInfoResponse{Tip: &headersv1.HeaderInfo{Hash: f.tip[:], Height: f.height[f.tip]}}, nil
}

func (f *fakeNode) SubmitBlock(_ context.Context, req *blockvalidatorv1.SubmitBlockRequest, _ ...grpc.CallOption) (*blockvalidatorv1.SubmitBlockResponse, error) {
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(req.GetBlock())); err != nil {
		return nil, status.Error(codes.InvalidArgument, "block decode failed")
	}
	h := b.BlockHash()
	f.submitted = append(f.submitted, h)
	resp := &blockvalidatorv1.SubmitBlockResponse{Hash: h[:]}
	parentHeight, ok := f.height[b.Header.PrevBlock]
	switch {
	case !ok:
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN
	case f.reject[h]:
		resp.Result, resp.RejectReason = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED, "bad-test"
		f.status[h], f.height[h] = headersv1.BlockStatus_BLOCK_STATUS_INVALID, parentHeight+1
	default:
		resp.Result = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED
		f.status[h], f.height[h], f.tip = headersv1.BlockStatus_BLOCK_STATUS_VALID, parentHeight+1, h
	}
	resp.TipHash, resp.TipHeight = f.tip[:], f.height[f.tip]
	return resp, nil
}

func (f *fakeNode) config(files []string, maxPending int64, reg prometheus.Registerer) Config {
	return Config{Files: files, Net: testNet, Genesis: testGenesis, Headers: f, Validator: f,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg, MaxPendingBytes: maxPending,
		ProgressInterval: time.Hour, CallTimeout: time.Minute}
}

// TestImportOrdersSpillsAndReruns imports a chain stored newest first
// across two files with no memory for waiting blocks (so each is re-read
// from its file), then reruns and finds everything present.
func TestImportOrdersSpillsAndReruns(t *testing.T) {
	blocks := testChain(t, 30)
	var a, b [][]byte
	for i := len(blocks) - 1; i >= 0; i-- {
		if i >= 15 {
			a = append(a, record(raw(t, blocks[i])))
		} else {
			b = append(b, record(raw(t, blocks[i])))
		}
	}
	files := []string{writeFile(t, "blk00000.dat", a...), writeFile(t, "blk00001.dat", append(b, make([]byte, 4096))...)}
	node := newFakeNode()
	reg := prometheus.NewRegistry()
	sum, err := Run(context.Background(), node.config(files, 0, reg))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 30 || sum.SpilledToDisk != 29 || len(sum.Orphans) != 0 || sum.TipHeight != 30 || sum.PaddingBytes != 4096 {
		t.Fatalf("summary: imported %d spilled %d orphans %d tip %d padding %d", sum.Imported, sum.SpilledToDisk, len(sum.Orphans), sum.TipHeight, sum.PaddingBytes)
	}
	for i, h := range node.submitted {
		if h != blocks[i].BlockHash() {
			t.Fatalf("submission %d was %s, want block %d", i, h, i)
		}
	}
	if got := counter(t, reg, "btcmesh_import_blocks_total", "imported"); got != 30 {
		t.Fatalf("btcmesh_import_blocks_total{result=imported} = %v", got)
	}

	// Rerun as if the first run had been interrupted after block 24: the
	// newer blocks come first in the files and look their parent up.
	node.submitted = nil
	for _, b := range blocks[25:] {
		delete(node.status, b.BlockHash())
		delete(node.height, b.BlockHash())
	}
	node.tip = blocks[24].BlockHash()
	sum, err = Run(context.Background(), node.config(files, 1<<20, nil))
	if err != nil {
		t.Fatal(err)
	}
	if sum.AlreadyPresent != 25 || sum.Imported != 5 || sum.Duplicates != 0 || len(node.submitted) != 5 || sum.TipHeight != 30 {
		t.Fatalf("rerun: present %d imported %d duplicates %d submitted %d tip %d",
			sum.AlreadyPresent, sum.Imported, sum.Duplicates, len(node.submitted), sum.TipHeight)
	}
}

// counter reads a labelled counter from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// TestImportRejectsDescendantsAndReportsOrphans: a rejected block's
// descendants are not submitted, a block with a missing parent is
// reported, and the run is a failure only when nothing was imported.
func TestImportRejectsDescendantsAndReportsOrphans(t *testing.T) {
	blocks := testChain(t, 12)
	stray := testChain(t, 1)[0]
	stray.Header.PrevBlock = chainhash.Hash{1}
	var recs [][]byte
	for _, b := range append([]*wire.MsgBlock{stray}, blocks...) {
		recs = append(recs, record(raw(t, b)))
	}
	files := []string{writeFile(t, "bootstrap.dat", recs...)}
	node := newFakeNode()
	node.reject[blocks[8].BlockHash()] = true
	sum, err := Run(context.Background(), node.config(files, 1<<20, nil))
	if err != nil {
		t.Fatal(err)
	}
	reasons := sum.RejectReasons()
	if sum.Imported != 8 || reasons["bad-test"] != 1 || reasons["bad-prevblk"] != 3 || len(node.submitted) != 9 {
		t.Fatalf("imported %d, reasons %v, submitted %d", sum.Imported, reasons, len(node.submitted))
	}
	if len(sum.Orphans) != 1 || sum.Orphans[0].Hash != stray.BlockHash() || sum.Orphans[0].Offset != 0 {
		t.Fatalf("orphans: %+v", sum.Orphans)
	}
	var text strings.Builder
	sum.WriteText(&text)
	for _, want := range []string{"orphans left:    1", stray.BlockHash().String(), "bad-prevblk", "result:          done"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}

	// Only orphans: nothing could be imported.
	sum, err = Run(context.Background(), newFakeNode().config([]string{writeFile(t, "x.dat", record(raw(t, stray)))}, 0, nil))
	if err != nil || !sum.NothingImported() {
		t.Fatalf("orphan-only import: err %v, nothing imported %v", err, sum.NothingImported())
	}
}

// TestImportStopsOnCancel: a cancelled context ends the run early with
// Interrupted set and no error.
func TestImportStopsOnCancel(t *testing.T) {
	blocks := testChain(t, 5)
	var recs [][]byte
	for _, b := range blocks {
		recs = append(recs, record(raw(t, b)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	node := newFakeNode()
	sum, err := Run(ctx, node.config([]string{writeFile(t, "blk.dat", recs...)}, 0, nil))
	if err != nil || !sum.Interrupted || sum.NothingImported() || len(node.submitted) != 0 {
		t.Fatalf("err %v interrupted %v submitted %d", err, sum.Interrupted, len(node.submitted))
	}
}
