package test

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestNodeEndToEnd runs the whole node in one process and drives it only
// through `btcmesh ctl`.
func TestNodeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the btcmesh binary")
	}
	grpcAddr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	node := start(t, "node", grpcAddr, "node",
		"--datadir", t.TempDir(), "--grpc-listen", grpcAddr,
		"--metrics-listen", metricsAddr, "--nats-listen", "127.0.0.1:0", "--p2p-listen", testenv.FreeAddr(t))
	c := ctlClient{flags: []string{"--rpc", grpcAddr}}
	runScenario(t, c)
	// One process validates its scripts in process, not over NATS.
	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	if !strings.Contains(body, `btcmesh_txvalidator_jobs_total{mode="MODE_FULL",transport="local"}`) {
		t.Error("no script batch was validated in process")
	}
	if strings.Contains(body, `transport="nats"`) {
		t.Error("a script batch went over NATS in the single-process node")
	}
	if out := c.ok(t, "stop"); !strings.Contains(out, "stopping") {
		t.Fatalf("stop said %q", out)
	}
	node.wait(t, 30*time.Second)
}

// TestSplitServicesEndToEnd runs each service as its own process, joined
// only by a NATS server and gRPC, and runs the same scenario.
func TestSplitServicesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts six btcmesh processes")
	}
	natsSrv, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(natsSrv.Shutdown)
	datadir := t.TempDir()
	addr := map[string]string{}
	for _, s := range []string{"utxostore", "headers", "txvalidator", "blockvalidator", "miner", "p2p"} {
		addr[s] = testenv.FreeAddr(t)
	}
	common := func(s string) []string {
		return []string{s, "--nats-url", natsSrv.URL(), "--grpc-listen", addr[s], "--metrics-listen", "",
			"--datadir", filepath.Join(datadir, s)}
	}
	start(t, "utxostore", addr["utxostore"], common("utxostore")...)
	start(t, "headers", addr["headers"], common("headers")...)
	start(t, "txvalidator", addr["txvalidator"], common("txvalidator")...)
	start(t, "blockvalidator", addr["blockvalidator"], append(common("blockvalidator"),
		"--headers-addr", addr["headers"], "--utxostore-addr", addr["utxostore"])...)
	start(t, "miner", addr["miner"], append(common("miner"),
		"--headers-addr", addr["headers"], "--utxostore-addr", addr["utxostore"], "--blockvalidator-addr", addr["blockvalidator"])...)
	start(t, "p2p", addr["p2p"], append(common("p2p"), "--p2p-listen", testenv.FreeAddr(t),
		"--headers-addr", addr["headers"], "--blockvalidator-addr", addr["blockvalidator"])...)
	c := ctlClient{flags: []string{
		"--rpc", addr["headers"], "--rpc-headers", addr["headers"], "--rpc-utxostore", addr["utxostore"],
		"--rpc-blockvalidator", addr["blockvalidator"], "--rpc-miner", addr["miner"], "--rpc-p2p", addr["p2p"],
		"--rpc-node", addr["headers"],
	}}
	runScenario(t, c)
}

// runScenario is the foundation's acceptance scenario: mine 101 blocks to a
// P2WPKH address, spend a coinbase, see it in the mempool, mine it, see the
// change in gettxout and gettxoutsetinfo, and have bad input refused with
// the rule's name while the node keeps running.
func runScenario(t *testing.T, c ctlClient) {
	w := newWallet(t)
	miner := newWallet(t)
	hashes := decodeJSON[[]string](t, c.ok(t, "generatetoaddress", "101", w.Address.EncodeAddress()))
	if len(hashes) != 101 {
		t.Fatalf("generatetoaddress returned %d hashes", len(hashes))
	}
	if got := c.ok(t, "getblockcount"); got != "101" {
		t.Fatalf("getblockcount = %s", got)
	}
	if got := c.ok(t, "getbestblockhash"); got != hashes[100] {
		t.Fatalf("getbestblockhash = %s, want %s", got, hashes[100])
	}
	if got := c.ok(t, "getblockhash", "1"); got != hashes[0] {
		t.Fatalf("getblockhash 1 = %s, want %s", got, hashes[0])
	}
	info := decodeJSON[map[string]any](t, c.ok(t, "getblockchaininfo"))
	if info["chain"] != "regtest" || info["blocks"] != float64(101) {
		t.Fatalf("getblockchaininfo: %v", info)
	}
	coinbase := func(height int) coin {
		blk := decodeJSON[map[string]any](t, c.ok(t, "getblock", hashes[height-1], "2"))
		tx0 := blk["tx"].([]any)[0].(map[string]any)
		txid, err := chainhash.NewHashFromStr(tx0["txid"].(string))
		if err != nil {
			t.Fatal(err)
		}
		value := tx0["vout"].([]any)[0].(map[string]any)["value"].(float64)
		return coin{txid: *txid, index: 0, value: int64(value*1e8 + 0.5)}
	}
	cb1 := coinbase(1)
	if cb1.value != 50e8 {
		t.Fatalf("block 1 coinbase pays %d", cb1.value)
	}
	before := decodeJSON[map[string]any](t, c.ok(t, "gettxoutsetinfo"))

	// Spend the first coinbase: 30 BTC to another key, the rest less a fee back.
	const fee = 10_000
	spendHex, spendID := w.spend(t, cb1,
		wire.NewTxOut(30e8, miner.Script), wire.NewTxOut(cb1.value-30e8-fee, w.Script))
	if got := c.ok(t, "sendrawtransaction", spendHex); got != spendID.String() {
		t.Fatalf("sendrawtransaction returned %s, want %s", got, spendID)
	}
	mempool := decodeJSON[[]string](t, c.ok(t, "getrawmempool"))
	if len(mempool) != 1 || mempool[0] != spendID.String() {
		t.Fatalf("getrawmempool = %v", mempool)
	}
	// A second spend of the same coin conflicts with the mempool.
	conflictHex, _ := w.spend(t, cb1, wire.NewTxOut(cb1.value-20_000, w.Script))
	c.fails(t, "txn-mempool-conflict", "sendrawtransaction", conflictHex)

	mined := decodeJSON[[]string](t, c.ok(t, "generatetoaddress", "1", miner.Address.EncodeAddress()))
	blk := decodeJSON[map[string]any](t, c.ok(t, "getblock", mined[0], "1"))
	if !containsString(blk["tx"].([]any), spendID.String()) {
		t.Fatalf("block %s does not contain the spend: %v", mined[0], blk["tx"])
	}
	if mp := decodeJSON[[]string](t, c.ok(t, "getrawmempool")); len(mp) != 0 {
		t.Fatalf("mempool not empty after mining: %v", mp)
	}
	out := decodeJSON[map[string]any](t, c.ok(t, "gettxout", spendID.String(), "0"))
	if out["value"] != 30.0 || out["confirmations"] != float64(1) {
		t.Fatalf("gettxout of the new output: %v", out)
	}
	if got := c.ok(t, "gettxout", cb1.txid.String(), "0"); got != "" {
		t.Fatalf("spent coinbase still reported: %s", got)
	}
	after := decodeJSON[map[string]any](t, c.ok(t, "gettxoutsetinfo"))
	// One coinbase output spent, two outputs created, one new coinbase (plus
	// its witness commitment, which is unspendable and not in the set).
	if after["height"] != float64(102) || after["txouts"].(float64) != before["txouts"].(float64)+2 {
		t.Fatalf("gettxoutsetinfo before %v after %v", before, after)
	}
	if after["hash_serialized_3"] == before["hash_serialized_3"] {
		t.Fatal("UTXO set hash did not change")
	}

	// Bad input is refused with the rule's name; the node keeps running.
	c.fails(t, "decode", "sendrawtransaction", "zz")
	c.fails(t, "bad-txns-inputs-missingorspent", "sendrawtransaction", conflictHex)
	cb2 := coinbase(2)
	badHex, _ := w.spend(t, cb2, wire.NewTxOut(cb2.value-fee, w.Script))
	c.fails(t, "mandatory-script-verify-flag-failed", "sendrawtransaction", corruptSignature(t, badHex))
	immature := coinbase(50)
	immatureHex, _ := w.spend(t, immature, wire.NewTxOut(immature.value-fee, w.Script))
	c.fails(t, "bad-txns-premature-spend-of-coinbase", "sendrawtransaction", immatureHex)
	if got := c.ok(t, "getblockcount"); got != "102" {
		t.Fatalf("node not answering after bad input: %s", got)
	}
}

// corruptSignature flips a bit inside the first input's witness signature.
func corruptSignature(t *testing.T, txHex string) string {
	raw, err := hex.DecodeString(txHex)
	if err != nil {
		t.Fatal(err)
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(strings.NewReader(string(raw))); err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness[0][10] ^= 0x01
	var sb strings.Builder
	if err := tx.Serialize(hexWriter{&sb}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

type hexWriter struct{ sb *strings.Builder }

func (h hexWriter) Write(p []byte) (int, error) {
	h.sb.WriteString(hex.EncodeToString(p))
	return len(p), nil
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s[:min(len(s), 200)], err)
	}
	return v
}

func containsString(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// httpGet returns the body of a GET of url, failing the test otherwise.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}
