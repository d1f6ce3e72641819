package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// importChainLen is how many blocks on top of genesis the test chain has.
const importChainLen = 300

// TestImportBlockFiles mines a regtest chain with a node, writes it into
// two Bitcoin Core style blk files in shuffled order with damage, imports
// them into a fresh data dir with `btcmesh import` (interrupted once, then
// rerun), and checks that `btcmesh node` continues from the imported tip.
func TestImportBlockFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the btcmesh binary")
	}
	blocks := mineChain(t, importChainLen)
	tip := blocks[len(blocks)-1].BlockHash()

	// Damage: a block with a bad merkle root on top of block 150 (valid
	// proof of work, so only the block rules catch it), a child of that
	// block, and a block whose parent never appears.
	bad := mutate(t, blocks[151], func(b *wire.MsgBlock) { b.Header.MerkleRoot[0] ^= 1 })
	badChild := mutate(t, blocks[152], func(b *wire.MsgBlock) { b.Header.PrevBlock = bad.BlockHash() })
	orphan := mutate(t, blocks[40], func(b *wire.MsgBlock) { b.Header.PrevBlock = chainhash.Hash{0xde, 0xad} })

	all := append(append([]*wire.MsgBlock{}, blocks...), bad, badChild, orphan)
	rng := rand.New(rand.NewSource(7))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	half := len(all) / 2

	dir := t.TempDir()
	magic := chaincfg.RegressionNetParams.Net
	var f1, f2 bytes.Buffer
	junkAt := 0
	for i, b := range all[:half] {
		if i == 20 {
			junkAt = f1.Len()
			f1.WriteString("this is not a block record \x01\x02\x03")
		}
		writeRecord(t, &f1, magic, serialize(t, b))
	}
	// A record cut short by the end of the file.
	truncAt := f1.Len()
	binary.Write(&f1, binary.LittleEndian, uint32(magic))
	binary.Write(&f1, binary.LittleEndian, uint32(1000))
	f1.Write(make([]byte, 200))
	for i, b := range all[half:] {
		if i == 30 { // a complete record that is not a block
			writeRecord(t, &f2, magic, bytes.Repeat([]byte{0xff}, 300))
		}
		writeRecord(t, &f2, magic, serialize(t, b))
	}
	f2.Write(make([]byte, 8192)) // preallocation padding
	file1, file2 := filepath.Join(dir, "blk00000.dat"), filepath.Join(dir, "blk00001.dat")
	if err := os.WriteFile(file1, f1.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file2, f2.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	datadir := t.TempDir()
	args := []string{"import", "--datadir", datadir, "--import-progress-interval", "50ms", file1, file2}

	// Start-up errors name the flag or the file.
	if out, err := exec.Command(binPath, "import", "--network", "nonet", "--datadir", datadir, file1).CombinedOutput(); err == nil || !strings.Contains(string(out), "--network") {
		t.Fatalf("unknown network: err %v, output %s", err, out)
	}
	if out, err := exec.Command(binPath, "import", "--datadir", datadir, file1, filepath.Join(dir, "missing.dat")).CombinedOutput(); err == nil || !strings.Contains(string(out), "missing.dat") {
		t.Fatalf("missing file: err %v, output %s", err, out)
	}

	// First run: interrupt it once it has imported something.
	metricsAddr := testenv.FreeAddr(t)
	cmd := exec.Command(binPath, append([]string{"import", "--metrics-listen", metricsAddr}, args[1:]...)...)
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	progressRE := regexp.MustCompile(`"msg":"import progress".*"imported":([0-9]+)`)
	interrupted := false
	for !interrupted {
		select {
		case err := <-done:
			t.Fatalf("import finished before it could be interrupted (%v):\n%s\n%s", err, stdout.String(), tail(stderr.String(), 20))
		case <-time.After(10 * time.Millisecond):
		}
		if m := progressRE.FindAllStringSubmatch(stderr.String(), -1); len(m) > 0 {
			if n, _ := strconv.Atoi(m[len(m)-1][1]); n >= 20 {
				checkImportMetrics(t, metricsAddr)
				_ = cmd.Process.Signal(os.Interrupt)
				interrupted = true
			}
		}
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("no progress after 2 minutes:\n%s", tail(stderr.String(), 20))
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted import exited with %v:\n%s\n%s", err, stdout.String(), tail(stderr.String(), 20))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("import did not stop within 60s of SIGINT")
	}
	first := stdout.String()
	if lines := regexp.MustCompile(`(?m)^.*"msg":"import progress".*$`).FindAllString(stderr.String(), -1); len(lines) > 0 {
		t.Logf("last progress log line: %s", lines[len(lines)-1])
	}
	t.Logf("interrupted run:\n%s", first)
	if !strings.Contains(first, "result:          interrupted") {
		t.Fatalf("summary does not say interrupted:\n%s", first)
	}
	imported1 := summaryCount(t, first, "imported")
	if imported1 < 20 || imported1 >= importChainLen {
		t.Fatalf("interrupted run imported %d blocks, want some but not all", imported1)
	}

	// Second run: skips what is there and finishes.
	out, err := exec.Command(binPath, args...).Output()
	second := string(out)
	t.Logf("second run:\n%s", second)
	if err != nil {
		t.Fatalf("rerun failed: %v\n%s", err, second)
	}
	if got := summaryCount(t, second, "already present"); got != imported1 {
		t.Fatalf("rerun found %d blocks already present, want %d", got, imported1)
	}
	if got := summaryCount(t, second, "imported"); got != importChainLen-imported1 {
		t.Fatalf("rerun imported %d blocks, want %d", got, importChainLen-imported1)
	}
	for _, want := range []string{
		"blocks read:     " + strconv.Itoa(len(all)), // the corrupt record is not a block
		"genesis:         1",
		"rejected:        2",
		"bad-txnmrklroot              1",
		"bad-prevblk                  1",
		bad.BlockHash().String(),
		badChild.BlockHash().String(),
		"undecodable:     1",
		"orphans left:    1",
		orphan.BlockHash().String() + "  parent " + orphan.Header.PrevBlock.String(),
		fmt.Sprintf("junk        %s @%d", file1, junkAt),
		fmt.Sprintf("truncated   %s @%d", file1, truncAt),
		"undecodable " + file2,
		"zero padding:    8192 bytes",
		fmt.Sprintf("chain tip:       height %d (was %d), %s", importChainLen, imported1, tip),
		"result:          done",
	} {
		if !strings.Contains(second, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The node continues from the imported tip and mines on top of it.
	grpcAddr := testenv.FreeAddr(t)
	node := start(t, "node", grpcAddr, "node", "--datadir", datadir, "--grpc-listen", grpcAddr,
		"--metrics-listen", "", "--nats-listen", "127.0.0.1:0", "--p2p-listen", testenv.FreeAddr(t))
	c := ctlClient{flags: []string{"--rpc", grpcAddr}}
	if got := c.ok(t, "getblockcount"); got != strconv.Itoa(importChainLen) {
		t.Fatalf("getblockcount after import = %s", got)
	}
	if got := c.ok(t, "getbestblockhash"); got != tip.String() {
		t.Fatalf("getbestblockhash after import = %s, want %s", got, tip)
	}
	// The imported blocks' bytes are in the node's block store.
	spendBlock := decodeJSON[map[string]any](t, c.ok(t, "getblock", blocks[102].BlockHash().String(), "1"))
	if txs, _ := spendBlock["tx"].([]any); len(txs) != 2 {
		t.Fatalf("imported block 102 read back with %v", spendBlock["tx"])
	}
	mined := decodeJSON[[]string](t, c.ok(t, "generatetoaddress", "1", newWallet(t).Address.EncodeAddress()))
	if got := c.ok(t, "getblockcount"); got != strconv.Itoa(importChainLen+1) {
		t.Fatalf("getblockcount after mining = %s", got)
	}
	blk := decodeJSON[map[string]any](t, c.ok(t, "getblock", mined[0], "1"))
	if blk["previousblockhash"] != tip.String() {
		t.Fatalf("mined block's parent is %v, want %s", blk["previousblockhash"], tip)
	}
	node.stop(t)

	// A file with nothing importable fails.
	junk := filepath.Join(dir, "junk.dat")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binPath, "import", "--datadir", t.TempDir(), junk).Output()
	if err == nil || !strings.Contains(string(out), "nothing could be imported") || !strings.Contains(string(out), "bytes skipped:   4000") {
		t.Fatalf("junk import: err %v\n%s", err, out)
	}
}

// mineChain runs a node, mines n blocks (with one transaction spending a
// coinbase, so scripts are checked on import) and returns genesis plus the
// n blocks, read back through the block validator.
func mineChain(t *testing.T, n int) []*wire.MsgBlock {
	t.Helper()
	grpcAddr := testenv.FreeAddr(t)
	node := start(t, "source node", grpcAddr, "node", "--datadir", t.TempDir(), "--grpc-listen", grpcAddr,
		"--metrics-listen", "", "--nats-listen", "127.0.0.1:0", "--p2p-listen", testenv.FreeAddr(t))
	c := ctlClient{flags: []string{"--rpc", grpcAddr}}
	w := newWallet(t)
	hashes := decodeJSON[[]string](t, c.ok(t, "generatetoaddress", "101", w.Address.EncodeAddress()))
	blk := decodeJSON[map[string]any](t, c.ok(t, "getblock", hashes[0], "2"))
	tx0 := blk["tx"].([]any)[0].(map[string]any)
	txid, err := chainhash.NewHashFromStr(tx0["txid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	spendHex, _ := w.spend(t, coin{txid: *txid, value: 50e8}, wire.NewTxOut(50e8-10_000, w.Script))
	c.ok(t, "sendrawtransaction", spendHex)
	c.ok(t, "generatetoaddress", strconv.Itoa(n-101), w.Address.EncodeAddress())

	cc, err := grpcclient.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	heights := make([]int32, n)
	for i := range heights {
		heights[i] = int32(i + 1)
	}
	infos, err := headersv1.NewHeaderServiceClient(cc).GetHeadersByHeight(ctx, &headersv1.GetHeadersByHeightRequest{Heights: heights})
	if err != nil {
		t.Fatal(err)
	}
	bv := blockvalidatorv1.NewBlockValidatorServiceClient(cc)
	out := []*wire.MsgBlock{chaincfg.RegressionNetParams.GenesisBlock}
	for _, info := range infos.GetInfos() {
		resp, err := bv.GetBlock(ctx, &blockvalidatorv1.GetBlockRequest{Hash: info.GetHash()})
		if err != nil {
			t.Fatal(err)
		}
		var b wire.MsgBlock
		if err := b.Deserialize(bytes.NewReader(resp.GetBlock())); err != nil {
			t.Fatal(err)
		}
		out = append(out, &b)
	}
	if len(out) != n+1 || out[102].Transactions[1].TxHash() == (chainhash.Hash{}) {
		t.Fatalf("read %d blocks; block 102 should carry the spend", len(out))
	}
	node.stop(t)
	return out
}

// mutate copies b, applies change and grinds the nonce until the header
// meets the regtest proof-of-work target again.
func mutate(t *testing.T, b *wire.MsgBlock, change func(*wire.MsgBlock)) *wire.MsgBlock {
	t.Helper()
	var cp wire.MsgBlock
	if err := cp.Deserialize(bytes.NewReader(serialize(t, b))); err != nil {
		t.Fatal(err)
	}
	change(&cp)
	target := blockchain.CompactToBig(cp.Header.Bits)
	for cp.Header.Nonce = 0; ; cp.Header.Nonce++ {
		h := cp.Header.BlockHash()
		if blockchain.HashToBig(&h).Cmp(target) <= 0 {
			return &cp
		}
		if cp.Header.Nonce > 1<<20 {
			t.Fatal("no nonce found")
		}
	}
}

func serialize(t *testing.T, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeRecord(t *testing.T, w *bytes.Buffer, magic wire.BitcoinNet, payload []byte) {
	t.Helper()
	var head [8]byte
	binary.LittleEndian.PutUint32(head[:4], uint32(magic))
	binary.LittleEndian.PutUint32(head[4:], uint32(len(payload)))
	w.Write(head[:])
	w.Write(payload)
}

// summaryCount reads "  label: N" from an import summary.
func summaryCount(t *testing.T, summary, label string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(label) + `:\s+([0-9]+)`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("summary has no %q line:\n%s", label, summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkImportMetrics scrapes a running import's /metrics.
func checkImportMetrics(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape import metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`btcmesh_import_blocks_total{result="imported"}`, "btcmesh_import_tip_height",
		"btcmesh_import_read_bytes_total", "btcmesh_import_eta_seconds", "btcmesh_import_blocks_per_second",
		"btcmesh_blockvalidator_"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("import metrics lack %s", want)
		}
	}
}
