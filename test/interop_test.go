package test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// interopFee is what every test transaction pays.
const interopFee = 20_000

// TestInteropBtcd proves btcmesh is a member of a Bitcoin network by
// running it against a real btcd (built from the version in go.mod) on
// regtest: initial sync of a chain with transactions to the same tip and
// UTXO set, blocks mined by btcmesh accepted by btcd, transactions relayed
// both ways, and reorganizations after a partition in both directions.
func TestInteropBtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: builds and runs btcd")
	}
	began := time.Now()
	w, w2 := newWallet(t), newWallet(t)
	bd := startBtcd(t, w.Address.EncodeAddress())
	it := &interop{t: t, bd: bd, w: w, w2: w2}
	it.buildChain(100, 200)
	t.Logf("btcd chain built: height %d, %d transactions, %s", it.height(), it.ntx, time.Since(began).Round(time.Millisecond))

	grpcAddr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	it.meshP2P = testenv.FreeAddr(t)
	syncStart := time.Now()
	node := start(t, "node", grpcAddr, "node", "--datadir", t.TempDir(), "--grpc-listen", grpcAddr,
		"--metrics-listen", metricsAddr, "--nats-listen", "127.0.0.1:0",
		"--p2p-listen", it.meshP2P, "--connect", bd.p2p)
	it.c = ctlClient{flags: []string{"--rpc", grpcAddr}}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"InitialSync", func(t *testing.T) {
			it.waitSameTip(t, 3*time.Minute)
			t.Logf("btcmesh synced %d blocks from btcd in %s", it.height(), time.Since(syncStart).Round(time.Millisecond))
			it.checkPeer(t)
			it.checkSynced(t, metricsAddr)
			it.checkUTXOs(t)
		}},
		{"BtcmeshMinesBtcdAccepts", it.btcmeshMines},
		{"TxRelay", it.txRelay},
		{"PartitionBtcdReorgs", func(t *testing.T) { it.partition(t, 2, 4, false) }},
		{"PartitionBtcmeshReorgs", func(t *testing.T) { it.partition(t, 5, 2, true) }},
		{"FinalUTXOSet", it.checkUTXOs},
		{"ParallelSyncFromBtcdAndBtcmesh", it.parallelSync},
		{"V2TransportBtcdSyncsFromBtcmesh", it.v2Transport},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			return
		}
	}
	t.Logf("interop done in %s", time.Since(began).Round(time.Millisecond))
	if f := os.Getenv("BTCMESH_INTEROP_LOG"); f != "" {
		_ = os.WriteFile(f, []byte(node.log.String()+"\n---- btcd ----\n"+bd.log.String()), 0o644)
	}
	// btcmesh logged no errors and punished no one while talking to btcd.
	for _, line := range strings.Split(node.log.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "misbehaving") {
			t.Errorf("btcmesh logged: %s", line)
		}
	}
}

// interop is the state shared by the steps of TestInteropBtcd.
type interop struct {
	t       *testing.T
	bd      *btcdNode
	c       ctlClient
	meshP2P string
	w, w2   *wallet
	// coinbases of btcd's first blocks, by height (index 0 = height 1).
	coinbases []coin
	nextCB    int // first coinbase not spent by the test yet
	// sample outpoints compared with gettxout.
	sample []wire.OutPoint
	ntx    int
}

func (it *interop) height() int64 {
	n, err := it.bd.rpc.GetBlockCount()
	if err != nil {
		it.t.Fatal(err)
	}
	return n
}

// buildChain mines `mature` blocks on btcd, then `rounds` blocks each with
// three transactions: one splitting a coinbase in three, one spending an
// output of the first in the same block, and one spending an output of
// the previous round's first transaction.
func (it *interop) buildChain(mature, rounds int) {
	t := it.t
	for _, h := range it.bd.generate(t, uint32(mature)) {
		it.coinbases = append(it.coinbases, it.coinbaseOf(t, h))
	}
	var prev *wire.MsgTx
	for r := 0; r < rounds; r++ {
		cb := it.takeCoinbase()
		part := (cb.value - interopFee) / 3
		tx1 := it.signTx(t, it.w, cb, wire.NewTxOut(part, it.w.Script), wire.NewTxOut(part, it.w2.Script), wire.NewTxOut(part, it.w.Script))
		tx2 := it.signTx(t, it.w, coin{txid: tx1.TxHash(), index: 2, value: part},
			wire.NewTxOut(part/2, it.w2.Script), wire.NewTxOut(part-part/2-interopFee, it.w.Script))
		txs := []*wire.MsgTx{tx1, tx2}
		if prev != nil {
			txs = append(txs, it.signTx(t, it.w, coin{txid: prev.TxHash(), index: 0, value: prev.TxOut[0].Value},
				wire.NewTxOut(prev.TxOut[0].Value-interopFee, it.w2.Script)))
		}
		for _, tx := range txs {
			if _, err := it.bd.rpc.SendRawTransaction(tx, false); err != nil {
				t.Fatalf("btcd sendrawtransaction (round %d): %v", r, err)
			}
		}
		blk := it.bd.generate(t, 1)[0]
		b, err := it.bd.rpc.GetBlock(blk)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Transactions) != len(txs)+1 {
			t.Fatalf("btcd block of round %d has %d transactions, want %d", r, len(b.Transactions), len(txs)+1)
		}
		it.coinbases = append(it.coinbases, coinOf(b.Transactions[0]))
		it.ntx += len(txs)
		if r%50 == 7 || r == rounds-1 {
			// Spent (tx1:2, coinbase, and tx1:0 once the next round runs)
			// and unspent outputs of several kinds.
			h1, h2 := tx1.TxHash(), tx2.TxHash()
			it.sample = append(it.sample, wire.OutPoint{Hash: cb.txid, Index: 0},
				wire.OutPoint{Hash: h1, Index: 0}, wire.OutPoint{Hash: h1, Index: 1},
				wire.OutPoint{Hash: h1, Index: 2}, wire.OutPoint{Hash: h2, Index: 1})
		}
		prev = tx1
	}
	it.sample = append(it.sample, wire.OutPoint{Hash: it.coinbases[len(it.coinbases)-1].txid})
}

// takeCoinbase returns the oldest coinbase the test has not spent yet.
func (it *interop) takeCoinbase() coin {
	c := it.coinbases[it.nextCB]
	it.nextCB++
	return c
}

func (it *interop) coinbaseOf(t *testing.T, h *chainhash.Hash) coin {
	b, err := it.bd.rpc.GetBlock(h)
	if err != nil {
		t.Fatal(err)
	}
	return coinOf(b.Transactions[0])
}

func coinOf(tx *wire.MsgTx) coin {
	return coin{txid: tx.TxHash(), index: 0, value: tx.TxOut[0].Value}
}

// signTx signs with w's key (the coin must pay to w).
func (it *interop) signTx(t *testing.T, w *wallet, c coin, outs ...*wire.TxOut) *wire.MsgTx {
	t.Helper()
	h, _ := w.spend(t, c, outs...)
	return decodeTx(t, h)
}

func decodeTx(t *testing.T, h string) *wire.MsgTx {
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &tx
}

func txHex(t *testing.T, tx *wire.MsgTx) string {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes())
}

// meshBest is btcmesh's tip hash ("" when ctl fails, e.g. mid-restart).
func (it *interop) meshBest(t *testing.T) string {
	out, _, ok := it.c.run(t, "getbestblockhash")
	if !ok {
		return ""
	}
	return out
}

// waitSameTip waits until btcmesh and btcd report the same best block.
func (it *interop) waitSameTip(t *testing.T, within time.Duration) string {
	t.Helper()
	var tip string
	eventually(t, within, "btcmesh and btcd on the same tip", func() (bool, string) {
		b, m := it.bd.best(t), it.meshBest(t)
		tip = b
		if b == m {
			return true, ""
		}
		info, _, _ := it.c.run(t, "getblockchaininfo")
		return false, fmt.Sprintf("btcd %s, btcmesh %s: %s", b, m, info)
	})
	return tip
}

// checkPeer: each side sees the other with the expected handshake results.
func (it *interop) checkPeer(t *testing.T) {
	peers := decodeJSON[[]map[string]any](t, it.c.ok(t, "getpeerinfo"))
	if len(peers) != 1 {
		t.Fatalf("btcmesh getpeerinfo: %d peers, want 1 (btcd): %v", len(peers), peers)
	}
	p := peers[0]
	if !strings.Contains(fmt.Sprint(p["subver"]), "btcd") || p["inbound"] == true {
		t.Fatalf("btcmesh's peer is not outbound btcd: %v", p)
	}
	bp, err := it.bd.rpc.GetPeerInfo()
	if err != nil || len(bp) != 1 {
		t.Fatalf("btcd getpeerinfo: %v %v", bp, err)
	}
	svc, err := strconv.ParseUint(bp[0].Services, 10, 64)
	if err != nil {
		// btcd prints the flags as a zero-padded decimal or as names.
		svc = 0
	}
	if !strings.Contains(bp[0].SubVer, "btcmesh") || !bp[0].Inbound {
		t.Fatalf("btcd's peer is not inbound btcmesh: %+v", bp[0])
	}
	if svc != 0 && wire.ServiceFlag(svc)&(wire.SFNodeNetwork|wire.SFNodeWitness) != wire.SFNodeNetwork|wire.SFNodeWitness {
		t.Fatalf("btcmesh advertises services %s to btcd", bp[0].Services)
	}
	if bp[0].Version < wire.ProtocolVersion {
		t.Fatalf("btcmesh negotiated protocol %d with btcd", bp[0].Version)
	}
	// btcd does not speak v2 unless told: btcmesh fell back to v1.
	if p["transport_protocol_type"] != "v1" || bp[0].V2Connection {
		t.Fatalf("transport with a v1-only btcd: btcmesh %v, btcd v2=%v", p["transport_protocol_type"], bp[0].V2Connection)
	}
}

// checkSynced: getblockchaininfo and the sync metrics agree the node is
// synced to btcd's chain.
func (it *interop) checkSynced(t *testing.T, metricsAddr string) {
	n := it.height()
	info := decodeJSON[map[string]any](t, it.c.ok(t, "getblockchaininfo"))
	if info["blocks"] != float64(n) || info["headers"] != float64(n) || info["initialblockdownload"] != false ||
		info["verificationprogress"] != 1.0 {
		t.Fatalf("getblockchaininfo after sync to %d: %v", n, info)
	}
	eventually(t, 10*time.Second, "sync metrics", func() (bool, string) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		want := []string{fmt.Sprintf("btcmesh_p2p_sync_block_height %d\n", n), fmt.Sprintf("btcmesh_p2p_sync_header_height %d\n", n)}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				return false, "no " + w
			}
		}
		return true, ""
	})
}

// parallelSync: a second btcmesh node connected to btcd and to the first
// btcmesh node downloads the chain from both at once and reaches the same
// tip and UTXO set.
func (it *interop) parallelSync(t *testing.T) {
	grpc2 := testenv.FreeAddr(t)
	start(t, "node2", grpc2, "node", "--datadir", t.TempDir(), "--grpc-listen", grpc2,
		"--metrics-listen", "", "--nats-listen", "127.0.0.1:0", "--p2p-listen", testenv.FreeAddr(t),
		"--connect", it.bd.p2p, "--connect", it.meshP2P)
	c2 := ctlClient{flags: []string{"--rpc", grpc2}}
	tip := it.bd.best(t)
	eventually(t, 3*time.Minute, "second btcmesh node synced", func() (bool, string) {
		got, _, _ := c2.run(t, "getbestblockhash")
		return got == tip, "at " + got
	})
	peers := decodeJSON[[]map[string]any](t, c2.ok(t, "getpeerinfo"))
	served := 0
	for _, p := range peers {
		if p["synced_blocks"].(float64) > 0 {
			served++
		}
	}
	if len(peers) != 2 || served != 2 {
		t.Fatalf("want blocks from both peers: %v", peers)
	}
	a := decodeJSON[map[string]any](t, it.c.ok(t, "gettxoutsetinfo"))
	b := decodeJSON[map[string]any](t, c2.ok(t, "gettxoutsetinfo"))
	if a["hash_serialized_3"] != b["hash_serialized_3"] || a["txouts"] != b["txouts"] {
		t.Fatalf("UTXO sets differ: %v vs %v", a, b)
	}
}

// v2Transport: a btcd with BIP324 enabled, starting from genesis, syncs
// the whole chain from btcmesh over a v2 connection that btcmesh opened,
// and btcd's own connection to btcmesh is v2 as well.
func (it *interop) v2Transport(t *testing.T) {
	bd2 := startBtcd(t, it.w.Address.EncodeAddress(), "--v2transport")
	it.c.ok(t, "addnode", bd2.p2p, "onetry")
	tip := it.meshBest(t)
	eventually(t, 2*time.Minute, "v2 btcd synced from btcmesh", func() (bool, string) {
		b := bd2.best(t)
		return b == tip, "btcd2 at " + b
	})
	if err := bd2.rpc.AddNode(it.meshP2P, rpcclient.ANAdd); err != nil {
		t.Fatalf("btcd addnode: %v", err)
	}
	eventually(t, 30*time.Second, "v2 connections both ways", func() (bool, string) {
		peers := decodeJSON[[]map[string]any](t, it.c.ok(t, "getpeerinfo"))
		in, out := false, false
		for _, p := range peers {
			if p["transport_protocol_type"] != "v2" {
				continue
			}
			if p["inbound"] == true {
				in = true
			} else if p["addr"] == bd2.p2p {
				out = true
			}
		}
		return in && out, fmt.Sprint(peers)
	})
	bp, err := bd2.rpc.GetPeerInfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bp {
		if !p.V2Connection {
			t.Fatalf("btcd reports a v1 connection to btcmesh: %+v", p)
		}
	}
}

// utxoSet recomputes the UTXO set of btcd's active chain from its blocks:
// every spendable output created and not spent (the genesis coinbase is
// not spendable and not in the set).
func (it *interop) utxoSet(t *testing.T) (count int, total int64) {
	n := it.height()
	set := map[wire.OutPoint]int64{}
	for h := int64(1); h <= n; h++ {
		hash, err := it.bd.rpc.GetBlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		b, err := it.bd.rpc.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions {
			for _, in := range tx.TxIn {
				delete(set, in.PreviousOutPoint)
			}
			id := tx.TxHash()
			for i, out := range tx.TxOut {
				if !txscript.IsUnspendable(out.PkScript) {
					set[wire.OutPoint{Hash: id, Index: uint32(i)}] = out.Value
				}
			}
		}
	}
	for _, v := range set {
		total += v
	}
	return len(set), total
}

// checkUTXOs compares btcmesh's UTXO set with btcd's chain: size, amount
// and height from gettxoutsetinfo against the set recomputed from btcd's
// blocks, and gettxout for the sampled outputs against btcd's gettxout.
func (it *interop) checkUTXOs(t *testing.T) {
	tip := it.waitSameTip(t, time.Minute)
	count, total := it.utxoSet(t)
	info := decodeJSON[map[string]any](t, it.c.ok(t, "gettxoutsetinfo"))
	if info["height"] != float64(it.height()) || info["bestblock"] != tip {
		t.Fatalf("btcmesh gettxoutsetinfo at %v/%v, btcd at %d/%s", info["height"], info["bestblock"], it.height(), tip)
	}
	if info["txouts"] != float64(count) {
		t.Fatalf("btcmesh has %v UTXOs, btcd's chain %d", info["txouts"], count)
	}
	if amt := info["total_amount"].(float64); math.Abs(amt*1e8-float64(total)) > 0.5 {
		t.Fatalf("btcmesh UTXO total %.8f, btcd's chain %d sat", amt, total)
	}
	spent, unspent := 0, 0
	for _, op := range it.sample {
		want, err := it.bd.rpc.GetTxOut(&op.Hash, op.Index, false)
		if err != nil {
			t.Fatalf("btcd gettxout %s: %v", op, err)
		}
		out := it.c.ok(t, "gettxout", op.Hash.String(), strconv.Itoa(int(op.Index)), "false")
		if want == nil {
			spent++
			if out != "" {
				t.Fatalf("gettxout %s: btcd says spent, btcmesh %s", op, out)
			}
			continue
		}
		unspent++
		got := decodeJSON[map[string]any](t, out)
		spk, _ := got["scriptPubKey"].(map[string]any)
		if got["bestblock"] != want.BestBlock || got["confirmations"] != float64(want.Confirmations) ||
			got["value"] != want.Value || got["coinbase"] != want.Coinbase || spk["hex"] != want.ScriptPubKey.Hex {
			t.Fatalf("gettxout %s: btcmesh %s, btcd %+v", op, out, want)
		}
	}
	if spent == 0 || unspent == 0 {
		t.Fatalf("sample has %d spent and %d unspent outputs; want both kinds", spent, unspent)
	}
	t.Logf("UTXO sets agree: %d outputs, %d sat; %d sampled outputs agree (%d spent)", count, total, len(it.sample), spent)
}

// btcmeshMines: blocks mined by btcmesh become btcd's tip.
func (it *interop) btcmeshMines(t *testing.T) {
	hashes := decodeJSON[[]string](t, it.c.ok(t, "generatetoaddress", "5", it.w2.Address.EncodeAddress()))
	if len(hashes) != 5 {
		t.Fatalf("generatetoaddress returned %v", hashes)
	}
	eventually(t, time.Minute, "btcd accepts btcmesh's blocks", func() (bool, string) {
		b := it.bd.best(t)
		return b == hashes[4], "btcd tip " + b
	})
	h, _ := chainhash.NewHashFromStr(hashes[0])
	hdr, err := it.bd.rpc.GetBlockHeaderVerbose(h)
	if err != nil || hdr.Confirmations != 5 {
		t.Fatalf("btcd getblockheader %s: %+v %v", hashes[0], hdr, err)
	}
}

// txRelay: a transaction sent to either side reaches the other's mempool
// and is mined by the other side.
func (it *interop) txRelay(t *testing.T) {
	toBtcd := it.signTx(t, it.w, it.takeCoinbase(), wire.NewTxOut(it.coinbases[it.nextCB-1].value-interopFee, it.w2.Script))
	toMesh := it.signTx(t, it.w, it.takeCoinbase(), wire.NewTxOut(it.coinbases[it.nextCB-1].value-interopFee, it.w2.Script))
	if _, err := it.bd.rpc.SendRawTransaction(toBtcd, false); err != nil {
		t.Fatalf("btcd sendrawtransaction: %v", err)
	}
	if got := it.c.ok(t, "sendrawtransaction", txHex(t, toMesh)); got != toMesh.TxHash().String() {
		t.Fatalf("btcmesh sendrawtransaction = %s", got)
	}
	both := []string{toBtcd.TxHash().String(), toMesh.TxHash().String()}
	slices.Sort(both)
	eventually(t, time.Minute, "both transactions in btcmesh's mempool", func() (bool, string) {
		mp := decodeJSON[[]string](t, it.c.ok(t, "getrawmempool"))
		slices.Sort(mp)
		return slices.Equal(mp, both), fmt.Sprint(mp)
	})
	eventually(t, time.Minute, "both transactions in btcd's mempool", func() (bool, string) {
		mp, err := it.bd.rpc.GetRawMempool()
		var s []string
		for _, h := range mp {
			s = append(s, h.String())
		}
		slices.Sort(s)
		return err == nil && slices.Equal(s, both), fmt.Sprint(s, err)
	})
	// btcd mines btcmesh's transaction and btcmesh sees it confirmed.
	blk := it.bd.generate(t, 1)[0]
	it.waitSameTip(t, time.Minute)
	if b, err := it.bd.rpc.GetBlock(blk); err != nil || len(b.Transactions) != 3 {
		t.Fatalf("btcd's block does not hold both transactions: %v", err)
	}
	eventually(t, 30*time.Second, "btcmesh mempool empties", func() (bool, string) {
		mp := it.c.ok(t, "getrawmempool")
		return mp == "[]", mp
	})
	it.sample = append(it.sample, wire.OutPoint{Hash: toMesh.TxHash()}, wire.OutPoint{Hash: toBtcd.TxHash()})
}

// partition cuts btcmesh from btcd, lets each mine (btcd nBtcd blocks,
// btcmesh nMesh), both confirming a different spend of the same coin, and
// reconnects them: the side with less work must reorganize to the other's
// branch. meshReorgs says which side has less work; when it is btcmesh,
// btcd makes the connection (btcmesh's inbound side), else btcmesh does.
func (it *interop) partition(t *testing.T, nBtcd, nMesh int, meshReorgs bool) {
	it.c.ok(t, "addnode", it.bd.p2p, "remove")
	it.c.ok(t, "disconnectnode", it.bd.p2p)
	if meshReorgs {
		// btcd connected to us last time (previous partition); stop it.
		_ = it.bd.rpc.AddNode(it.meshP2P, rpcclient.ANRemove)
	}
	eventually(t, 30*time.Second, "peers disconnected", func() (bool, string) {
		n := it.c.ok(t, "getconnectioncount")
		bp, err := it.bd.rpc.GetPeerInfo()
		return n == "0" && err == nil && len(bp) == 0, fmt.Sprintf("btcmesh %s peers, btcd %d", n, len(bp))
	})
	fork := it.bd.best(t)

	// The same coin, spent to different keys on each side.
	cb := it.takeCoinbase()
	spendB := it.signTx(t, it.w, cb, wire.NewTxOut(cb.value-interopFee, it.w2.Script))
	spendM := it.signTx(t, it.w, cb, wire.NewTxOut(cb.value-2*interopFee, it.w.Script))
	if _, err := it.bd.rpc.SendRawTransaction(spendB, false); err != nil {
		t.Fatalf("btcd sendrawtransaction: %v", err)
	}
	it.c.ok(t, "sendrawtransaction", txHex(t, spendM))
	btcdBlocks := it.bd.generate(t, uint32(nBtcd))
	meshBlocks := decodeJSON[[]string](t, it.c.ok(t, "generatetoaddress", strconv.Itoa(nMesh), it.w2.Address.EncodeAddress()))
	if it.meshBest(t) == fork || it.bd.best(t) == fork || it.meshBest(t) == it.bd.best(t) {
		t.Fatal("the two sides did not fork")
	}
	winner, loserTx, winnerTx := meshBlocks[len(meshBlocks)-1], spendB, spendM
	if meshReorgs {
		winner, loserTx, winnerTx = btcdBlocks[len(btcdBlocks)-1].String(), spendM, spendB
		if err := it.bd.rpc.AddNode(it.meshP2P, rpcclient.ANAdd); err != nil {
			t.Fatalf("btcd addnode: %v", err)
		}
	} else {
		it.c.ok(t, "addnode", it.bd.p2p, "add")
	}
	eventually(t, 2*time.Minute, "both sides on the branch with more work", func() (bool, string) {
		b, m := it.bd.best(t), it.meshBest(t)
		return b == winner && m == winner, fmt.Sprintf("want %s, btcd %s, btcmesh %s", winner, b, m)
	})
	// The losing branch's spend is gone from the UTXO set, the winner's is there.
	lose, win := loserTx.TxHash(), winnerTx.TxHash()
	if out := it.c.ok(t, "gettxout", lose.String(), "0", "false"); out != "" {
		t.Fatalf("btcmesh still has the losing branch's output: %s", out)
	}
	if out := it.c.ok(t, "gettxout", win.String(), "0", "false"); out == "" {
		t.Fatal("btcmesh lacks the winning branch's output")
	}
	if r, err := it.bd.rpc.GetTxOut(&lose, 0, false); err != nil || r != nil {
		t.Fatalf("btcd still has the losing branch's output: %+v %v", r, err)
	}
	if r, err := it.bd.rpc.GetTxOut(&win, 0, false); err != nil || r == nil {
		t.Fatalf("btcd lacks the winning branch's output: %v", err)
	}
	it.sample = append(it.sample, wire.OutPoint{Hash: lose}, wire.OutPoint{Hash: win})
}
