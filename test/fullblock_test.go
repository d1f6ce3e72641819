package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/blockchain/fullblocktests"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"
	utxostorev1 "github.com/btcmesh/btcmesh/proto/btcmesh/utxostore/v1"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/rules"
)

// btcd's full-block consensus suite (blockchain/fullblocktests), run in full
// through the node: every block goes to BlockValidatorService.SubmitBlock
// over real gRPC on loopback, the services behind it are the real ones
// (headers and utxostore on badger, the txvalidator pool on embedded NATS),
// and every instance type the pinned generator emits is checked:
//
//   - AcceptedBlock: ACCEPTED when IsMainChain, ORPHAN when IsOrphan,
//     SIDE_CHAIN otherwise, and the header index agrees.
//   - RejectedBlock: REJECTED with btcd's ErrorCode translated to our rule
//     name by internal/rules (every code the suite uses has an exact
//     counterpart), and the active tip unchanged. One shape differs by
//     design: when the block is valid and the rule is broken by an orphan
//     descendant it unblocks (b12 unblocking b13 and b14), btcd's
//     ProcessBlock returns the descendant's error while SubmitBlock answers
//     for the submitted block; the test then asserts that a descendant held
//     as an orphan was marked invalid with exactly that rule.
//   - OrphanOrRejectedBlock: ORPHAN or REJECTED.
//   - ExpectedTip: the headers service's active tip (GetChainInfo), the
//     blockvalidator's and the utxostore's tips, and the UTXO set (GetStats
//     against a set computed here from the main-chain blocks).
//   - RejectedNonCanonicalBlock: SubmitBlock refuses the raw bytes
//     (InvalidArgument or REJECTED), and the block's hash is not poisoned.
//   - BlockDisconnectExpectUTXO: checked at the moment the block is
//     disconnected, by a pass-through utxostore proxy the blockvalidator
//     talks to (fullblock_node_test.go).
//
// The suite's generator builds on chain parameters equal to btcd's
// RegressionNetParams (its own copy is unexported in v0.26.2; btcd's own
// TestFullBlocks uses chaincfg.RegressionNetParams too). Its blocks are
// version 4 and never signal BIP9 deployments, so btcd validates them
// without CSV, segwit and taproot: the network used here has the same
// parameters with those deployments never active (chain.Custom). The same
// suite is also run on btcmesh's own regtest (deployments buried at height
// 1), where every verdict must be the same.

// fbNetwork is regtest's parameters with CSV, segwit and taproot inactive,
// as btcd sees the suite's blocks.
func fbNetwork() chain.Network {
	p := chaincfg.RegressionNetParams
	return chain.Custom("fullblocktests", &p, math.MaxInt32, math.MaxInt32, math.MaxInt32)
}

func TestFullBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: the full-block suite runs the real services end to end")
	}
	tests, err := fullblocktests.Generate(false)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	t.Run("btcd-params", func(t *testing.T) { fbRunSuite(t, "Generate(false)", fbNetwork(), tests) })
	t.Run("regtest-buried-deployments", func(t *testing.T) {
		n, err := chain.Lookup("regtest")
		if err != nil {
			t.Fatal(err)
		}
		// Generate again: the suite's blocks are shared pointers, and
		// the first run must not be able to influence the second.
		tests, err := fullblocktests.Generate(false)
		if err != nil {
			t.Fatalf("generate: %v", err)
		}
		fbRunSuite(t, "Generate(false)", n, tests)
	})
}

// TestFullBlocksLargeReorg runs Generate(true): the whole suite followed by
// 1,088 max-size (1 MB) blocks, an equally long side chain, a reorg onto it
// and a reorg back (disconnecting and reconnecting about 1 GB of blocks).
// It is a separate test because it takes minutes (about 5.5 on the 2-core
// development machine, 4m45s of it submitting); `make test` runs it.
func TestFullBlocksLargeReorg(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: the large-reorg suite moves about 2 GB of blocks through the services")
	}
	tests, err := fullblocktests.Generate(true)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	fbRunSuite(t, "Generate(true)", fbNetwork(), tests)
}

// fbRunner holds one run's node and what the test learned so far.
type fbRunner struct {
	t    *testing.T
	node *fbNode
	// blocks are the blocks the node accepted in some form, by hash: the
	// UTXO model walks the active chain through them.
	blocks map[chainhash.Hash]*wire.MsgBlock
	// orphans are blocks answered ORPHAN whose fate is not known yet.
	orphans map[chainhash.Hash]string
	counts  map[string]int
	errs    int
}

const fbMaxErrors = 25

func (r *fbRunner) errorf(format string, args ...any) {
	r.t.Helper()
	r.errs++
	r.t.Errorf(format, args...)
	if r.errs >= fbMaxErrors {
		r.t.Fatalf("stopping after %d mismatches", r.errs)
	}
}

func (r *fbRunner) count(kind string) { r.counts[kind]++ }

func fbRunSuite(t *testing.T, label string, net chain.Network, tests [][]fullblocktests.TestInstance) {
	start := time.Now()
	r := &fbRunner{
		t:       t,
		node:    startFbNode(t, net),
		blocks:  map[chainhash.Hash]*wire.MsgBlock{*net.Params.GenesisHash: net.Params.GenesisBlock},
		orphans: map[chainhash.Hash]string{},
		counts:  map[string]int{},
	}
	total := 0
	for testNum, test := range tests {
		for itemNum, item := range test {
			total++
			if total%500 == 0 {
				t.Logf("%d instances done in %s", total, time.Since(start).Round(time.Second))
			}
			switch it := item.(type) {
			case fullblocktests.AcceptedBlock:
				r.count("AcceptedBlock")
				r.acceptedBlock(it)
			case fullblocktests.RejectedBlock:
				r.count("RejectedBlock")
				r.rejectedBlock(it)
			case fullblocktests.OrphanOrRejectedBlock:
				r.count("OrphanOrRejectedBlock")
				r.orphanOrRejectedBlock(it)
			case fullblocktests.ExpectedTip:
				r.count("ExpectedTip")
				r.expectedTip(it.Name, it.Block.BlockHash(), it.Height)
			case fullblocktests.RejectedNonCanonicalBlock:
				r.count("RejectedNonCanonicalBlock")
				r.rejectedNonCanonical(it)
			case fullblocktests.BlockDisconnectExpectUTXO:
				r.count("BlockDisconnectExpectUTXO")
				r.node.proxy.expect(it)
			default:
				t.Fatalf("test #%d item #%d: instance type %T is not handled; extend this test", testNum, itemNum, item)
			}
		}
	}

	// Every disconnect expectation must have been checked, and held.
	for _, e := range r.node.proxy.results() {
		switch {
		case e.checked == 0:
			r.errorf("BlockDisconnectExpectUTXO %q: block %s was never disconnected", e.item.Name, e.item.BlockHash)
		case e.failure != "":
			r.errorf("BlockDisconnectExpectUTXO %q: %s", e.item.Name, e.failure)
		default:
			r.count("BlockDisconnectExpectUTXO/checked")
		}
	}
	// The final tip's UTXO set against the independently computed one.
	info := r.chainInfo()
	tipHash, _ := chainhash.NewHash(info.GetTip().GetHash())
	r.checkUtxoSet("final tip", *tipHash, info.GetTip().GetHeight())

	elapsed := time.Since(start)
	conn, prep, disc := r.node.proxy.moves()
	names := make([]string, 0, len(r.counts))
	for k := range r.counts {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.counts[k]))
	}
	t.Logf("instances by type: %s", strings.Join(parts, " "))
	fmt.Printf("fullblocktests %s on %s: %d instances in %s (tip height %d, %d blocks connected (%d as prepared), %d disconnected, %d mismatches): %s\n",
		label, net.Name, total, elapsed.Round(100*time.Millisecond), info.GetTip().GetHeight(), conn, prep, disc, r.errs,
		strings.Join(parts, " "))
}

// expectedKind is the rule name internal/rules gives btcd's error code.
func expectedKind(code blockchain.ErrorCode) rules.Kind {
	k, _ := rules.KindOf(blockchain.RuleError{ErrorCode: code})
	return k
}

func (r *fbRunner) submitRaw(raw []byte) (*blockvalidatorv1.SubmitBlockResponse, error) {
	// A submission that triggers the 1,088-block reorg runs for minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	return r.node.bv.SubmitBlock(ctx, &blockvalidatorv1.SubmitBlockRequest{Block: raw})
}

func (r *fbRunner) submit(name string, b *wire.MsgBlock) *blockvalidatorv1.SubmitBlockResponse {
	r.t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		r.t.Fatalf("serialize %s: %v", name, err)
	}
	resp, err := r.submitRaw(buf.Bytes())
	if err != nil {
		r.t.Fatalf("SubmitBlock %s (%s): %v", name, b.BlockHash(), err)
	}
	hash := b.BlockHash()
	switch resp.GetResult() {
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED,
		blockvalidatorv1.SubmitResult_SUBMIT_RESULT_DUPLICATE_INVALID:
	default:
		r.blocks[hash] = b
		if resp.GetResult() == blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN {
			r.orphans[hash] = name
		}
	}
	return resp
}

// resolvedOrphans returns, for every block held as an orphan that the
// index now knows, its status and reason, and forgets it.
func (r *fbRunner) resolvedOrphans() map[string]*headersv1.HeaderInfo {
	out := map[string]*headersv1.HeaderInfo{}
	for hash, name := range r.orphans {
		info, ok := r.header(hash)
		if !ok {
			continue
		}
		out[name] = info
		delete(r.orphans, hash)
	}
	return out
}

func (r *fbRunner) header(hash chainhash.Hash) (*headersv1.HeaderInfo, bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := r.node.hdrs.GetHeader(ctx, &headersv1.GetHeaderRequest{Hash: hash[:]})
	if status.Code(err) == codes.NotFound {
		return nil, false
	}
	if err != nil {
		r.t.Fatalf("GetHeader %s: %v", hash, err)
	}
	return resp.GetInfo(), true
}

func (r *fbRunner) chainInfo() *headersv1.GetChainInfoResponse {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := r.node.hdrs.GetChainInfo(ctx, &headersv1.GetChainInfoRequest{})
	if err != nil {
		r.t.Fatalf("GetChainInfo: %v", err)
	}
	return info
}

func (r *fbRunner) acceptedBlock(it fullblocktests.AcceptedBlock) {
	r.t.Helper()
	hash := it.Block.BlockHash()
	resp := r.submit(it.Name, it.Block)
	r.resolvedOrphans()
	want, where := blockvalidatorv1.SubmitResult_SUBMIT_RESULT_SIDE_CHAIN, "side"
	switch {
	case it.IsOrphan:
		want, where = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN, "orphan"
	case it.IsMainChain:
		want, where = blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ACCEPTED, "main"
	}
	r.count("AcceptedBlock/" + where)
	if resp.GetResult() != want {
		r.errorf("AcceptedBlock %s (height %d, %s): result %s %q (%s), want %s", it.Name, it.Height, hash,
			resp.GetResult(), resp.GetRejectReason(), resp.GetRejectDetail(), want)
		return
	}
	info, known := r.header(hash)
	switch {
	case it.IsOrphan:
		if known {
			r.errorf("AcceptedBlock %s: an orphan is in the header index", it.Name)
		}
	case !known:
		r.errorf("AcceptedBlock %s: not in the header index", it.Name)
	case info.GetHeight() != it.Height:
		r.errorf("AcceptedBlock %s: index height %d, want %d", it.Name, info.GetHeight(), it.Height)
	case info.GetOnActiveChain() != it.IsMainChain:
		r.errorf("AcceptedBlock %s: on active chain %v, want %v", it.Name, info.GetOnActiveChain(), it.IsMainChain)
	case info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID:
		r.errorf("AcceptedBlock %s: index marks it invalid (%s)", it.Name, info.GetInvalidReason())
	}
}

func (r *fbRunner) rejectedBlock(it fullblocktests.RejectedBlock) {
	r.t.Helper()
	hash := it.Block.BlockHash()
	want := expectedKind(it.RejectCode)
	before := r.chainInfo().GetTip()
	resp := r.submit(it.Name, it.Block)
	resolved := r.resolvedOrphans()
	if resp.GetResult() != blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED {
		// The block itself may be valid while an orphan descendant it
		// unblocked breaks the rule (btcd reports that error for it).
		for name, info := range resolved {
			if info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID && info.GetInvalidReason() == string(want) {
				r.count("RejectedBlock/via-orphan-descendant")
				r.t.Logf("RejectedBlock %s: valid itself (%s); its orphan descendant %s was rejected with %s",
					it.Name, resp.GetResult(), name, want)
				return
			}
		}
		r.errorf("RejectedBlock %s (height %d, %s): result %s, want REJECTED %s (btcd %v)", it.Name, it.Height, hash,
			resp.GetResult(), want, it.RejectCode)
		return
	}
	r.count("RejectedBlock/rule-matched")
	if resp.GetRejectReason() != string(want) {
		r.counts["RejectedBlock/rule-matched"]--
		r.errorf("RejectedBlock %s (height %d, %s): rejected with %q (%s), want %q (btcd %v)", it.Name, it.Height, hash,
			resp.GetRejectReason(), resp.GetRejectDetail(), want, it.RejectCode)
	}
	// btcd (and Core, which returns to the first-seen chain) leave the
	// tip where it was when a block is rejected.
	after := r.chainInfo().GetTip()
	if !bytes.Equal(after.GetHash(), before.GetHash()) {
		r.errorf("RejectedBlock %s moved the active tip from height %d %s to height %d %s", it.Name,
			before.GetHeight(), fbRev(before.GetHash()), after.GetHeight(), fbRev(after.GetHash()))
	}
	if info, ok := r.header(hash); ok && info.GetOnActiveChain() {
		r.errorf("RejectedBlock %s is on the active chain", it.Name)
	}
}

func (r *fbRunner) orphanOrRejectedBlock(it fullblocktests.OrphanOrRejectedBlock) {
	r.t.Helper()
	resp := r.submit(it.Name, it.Block)
	r.resolvedOrphans()
	switch resp.GetResult() {
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_ORPHAN:
		r.count("OrphanOrRejectedBlock/orphan")
	case blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED:
		r.count("OrphanOrRejectedBlock/rejected")
	default:
		r.errorf("OrphanOrRejectedBlock %s (height %d): result %s, want ORPHAN or REJECTED", it.Name, it.Height,
			resp.GetResult())
	}
}

func (r *fbRunner) expectedTip(name string, hash chainhash.Hash, height int32) {
	r.t.Helper()
	tip := r.chainInfo().GetTip()
	if !bytes.Equal(tip.GetHash(), hash[:]) || tip.GetHeight() != height {
		r.errorf("ExpectedTip %s: headers tip is height %d %s, want height %d %s", name, tip.GetHeight(),
			fbRev(tip.GetHash()), height, hash)
		return
	}
	st, err := r.node.bv.GetStatus(context.Background(), &blockvalidatorv1.GetStatusRequest{})
	if err != nil {
		r.t.Fatalf("blockvalidator GetStatus: %v", err)
	}
	if !bytes.Equal(st.GetTipHash(), hash[:]) || st.GetTipHeight() != height {
		r.errorf("ExpectedTip %s: blockvalidator tip is height %d, want %d", name, st.GetTipHeight(), height)
	}
	r.checkUtxoSet("ExpectedTip "+name, hash, height)
}

func (r *fbRunner) rejectedNonCanonical(it fullblocktests.RejectedNonCanonicalBlock) {
	r.t.Helper()
	// The instance must really be undecodable by the canonical rules, or
	// this check proves nothing.
	var mb wire.MsgBlock
	if err := mb.BtcDecode(bytes.NewReader(it.RawBlock), 0, wire.BaseEncoding); err == nil {
		r.t.Fatalf("RejectedNonCanonicalBlock %s decodes with btcd's wire package", it.Name)
	}
	hash := chainhash.DoubleHashH(it.RawBlock[:min(len(it.RawBlock), wire.MaxBlockHeaderPayload)])
	resp, err := r.submitRaw(it.RawBlock)
	switch {
	case err != nil && status.Code(err) == codes.InvalidArgument:
		r.count("RejectedNonCanonicalBlock/invalid-argument")
	case err != nil:
		r.t.Fatalf("RejectedNonCanonicalBlock %s: SubmitBlock failed with %v, want InvalidArgument", it.Name, err)
	case resp.GetResult() == blockvalidatorv1.SubmitResult_SUBMIT_RESULT_REJECTED:
		r.count("RejectedNonCanonicalBlock/rejected")
	default:
		r.errorf("RejectedNonCanonicalBlock %s (height %d): result %s, want a refusal", it.Name, it.Height, resp.GetResult())
	}
	// The canonical encoding of the same block has the same hash and
	// must still be acceptable later (b64 after b64a).
	if info, ok := r.header(hash); ok && info.GetStatus() == headersv1.BlockStatus_BLOCK_STATUS_INVALID {
		r.errorf("RejectedNonCanonicalBlock %s: its hash %s is now marked invalid (%s)", it.Name, hash, info.GetInvalidReason())
	}
}

// fbRev renders a raw hash in the usual (reversed) hex.
func fbRev(b []byte) string {
	h, err := chainhash.NewHash(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return h.String()
}

// errFbChain is returned when the active chain cannot be rebuilt from the
// blocks the test submitted.
var errFbChain = errors.New("active chain not rebuildable from submitted blocks")

// activeChain walks back from tip through the submitted blocks.
func (r *fbRunner) activeChain(tip chainhash.Hash, height int32) ([]*wire.MsgBlock, error) {
	out := make([]*wire.MsgBlock, height+1)
	h := tip
	for i := height; i >= 0; i-- {
		b, ok := r.blocks[h]
		if !ok {
			return nil, fmt.Errorf("%w: block %s at height %d unknown", errFbChain, h, i)
		}
		out[i] = b
		h = b.Header.PrevBlock
	}
	if h != (chainhash.Hash{}) {
		return nil, fmt.Errorf("%w: walk did not end at genesis", errFbChain)
	}
	return out, nil
}

func (r *fbRunner) checkUtxoSet(what string, tip chainhash.Hash, height int32) {
	r.t.Helper()
	blocks, err := r.activeChain(tip, height)
	if err != nil {
		r.errorf("%s: %v", what, err)
		return
	}
	want, err := fbComputeUtxoStats(blocks)
	if err != nil {
		r.errorf("%s: UTXO model: %v", what, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := r.node.utxo.GetStats(ctx, &utxostorev1.GetStatsRequest{})
	if err != nil {
		r.t.Fatalf("utxostore GetStats: %v", err)
	}
	r.count("UtxoSetCheck")
	if got.GetHeight() != height || !bytes.Equal(got.GetBestBlock(), tip[:]) {
		r.errorf("%s: utxostore is at height %d %s, want %d %s", what, got.GetHeight(), fbRev(got.GetBestBlock()), height, tip)
		return
	}
	if got.GetTxouts() != want.txouts || got.GetTransactions() != want.transactions ||
		got.GetTotalAmount() != want.totalAmount || got.GetBogosize() != want.bogosize ||
		!bytes.Equal(got.GetHashSerialized(), want.hashSerialized[:]) {
		r.errorf("%s: utxostore stats txouts=%d txs=%d amount=%d bogosize=%d hash=%x, computed txouts=%d txs=%d amount=%d bogosize=%d hash=%x",
			what, got.GetTxouts(), got.GetTransactions(), got.GetTotalAmount(), got.GetBogosize(), got.GetHashSerialized(),
			want.txouts, want.transactions, want.totalAmount, want.bogosize, want.hashSerialized[:])
	}
}
