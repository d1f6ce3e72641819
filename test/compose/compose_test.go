//go:build compose

package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// env is what scripts/compose-test.sh passes in.
type env struct {
	bin      string   // host btcmesh binary (for ctl)
	ctlFlags []string // --rpc-<service> flags naming the published ports
	compose  []string // docker-compose -p PROJECT -f FILE
}

func loadEnv(t *testing.T) env {
	t.Helper()
	e := env{
		bin:      os.Getenv("BTCMESH_BIN"),
		ctlFlags: strings.Fields(os.Getenv("BTCMESH_CTL_FLAGS")),
		compose:  strings.Fields(os.Getenv("BTCMESH_COMPOSE")),
	}
	if e.bin == "" || len(e.ctlFlags) == 0 || len(e.compose) == 0 {
		t.Skip("run through scripts/compose-test.sh (needs BTCMESH_BIN, BTCMESH_CTL_FLAGS, BTCMESH_COMPOSE)")
	}
	return e
}

// ctl runs `btcmesh ctl` against the cluster.
func (e env) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append(append([]string{"ctl"}, e.ctlFlags...), args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ctl %s: %v: %s", args[0], err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (e env) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.ctl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dc runs docker-compose on the cluster's project.
func (e env) dc(t *testing.T, args ...string) string {
	t.Helper()
	all := append(append([]string{}, e.compose[1:]...), args...)
	out, err := exec.Command(e.compose[0], all...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", e.compose[0], strings.Join(all, " "), err, out)
	}
	return string(out)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s[:min(len(s), 200)], err)
	}
	return v
}

// sent is a transaction the cluster accepted: its id and its one output's value.
type sent struct {
	id    chainhash.Hash
	value int64
}

// TestCompose mines 101 blocks through the published ports, fans a coinbase
// out to many coins, then spends them in a stream of transactions and
// blocks while one of the two txvalidator containers is killed, and checks
// that every transaction was accepted, mined and reflected in the UTXO set.
func TestCompose(t *testing.T) {
	e := loadEnv(t)
	w := testenv.NewWallet(t)

	start := decode[map[string]any](t, e.ok(t, "getblockchaininfo"))
	if start["chain"] != "regtest" {
		t.Fatalf("chain %v, want regtest", start["chain"])
	}
	base := int(start["blocks"].(float64))

	// 1. 101 blocks: the first coinbase matures.
	hashes := decode[[]string](t, e.ok(t, "generatetoaddress", "101", w.Address.EncodeAddress()))
	if len(hashes) != 101 {
		t.Fatalf("generatetoaddress 101 returned %d hashes", len(hashes))
	}
	height := base + 101
	if got := e.ok(t, "getblockcount"); got != fmt.Sprint(height) {
		t.Fatalf("getblockcount = %s, want %d", got, height)
	}
	blk := decode[map[string]any](t, e.ok(t, "getblock", hashes[0], "2"))
	tx0 := blk["tx"].([]any)[0].(map[string]any)
	cbID, err := chainhash.NewHashFromStr(tx0["txid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	cb, cbValue := wire.OutPoint{Hash: *cbID}, int64(tx0["vout"].([]any)[0].(map[string]any)["value"].(float64)*1e8+0.5)
	t.Logf("mined 101 blocks to %s; height %d", w.Address, height)

	// 2. Fan the coinbase out to many coins and confirm them.
	const fanout = 300
	const fanFee = 100_000
	each := (cbValue - fanFee) / fanout
	outs := make([]*wire.TxOut, fanout)
	for i := range outs {
		outs[i] = wire.NewTxOut(each, w.Script)
	}
	fanHex, fanID := w.Spend(t, cb, cbValue, outs...)
	if got := e.ok(t, "sendrawtransaction", fanHex); got != fanID.String() {
		t.Fatalf("sendrawtransaction fan-out = %s, want %s", got, fanID)
	}
	mined := decode[[]string](t, e.ok(t, "generatetoaddress", "1", w.Address.EncodeAddress()))
	height++
	if !containsTx(t, e, mined[0], fanID.String()) {
		t.Fatalf("fan-out %s not in block %s", fanID, mined[0])
	}

	// 3. Spend every coin in a stream of transactions (4 senders) and mine a
	// block every 400 ms; kill txvalidator-1 with SIGKILL in the middle, so
	// that script batches of both mempool acceptance and block validation
	// are in flight on it when it dies.
	//
	// Sign every spend up front (signing in the senders would call t.Fatal
	// off the test goroutine).
	const spendFee = 1_000
	type signed struct {
		raw string
		tx  sent
	}
	queue := make(chan signed, fanout)
	for i := 0; i < fanout; i++ {
		raw, id := w.Spend(t, wire.OutPoint{Hash: fanID, Index: uint32(i)}, each, wire.NewTxOut(each-spendFee, w.Script))
		queue <- signed{raw: raw, tx: sent{id: id, value: each - spendFee}}
	}
	close(queue)
	var (
		mu       sync.Mutex
		accepted []sent
		sendErrs []error
		blocks   []string
		mineErrs []error
		done     atomic.Bool
		sentN    atomic.Int64
	)
	var senders sync.WaitGroup
	for g := 0; g < 4; g++ {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for item := range queue {
				out, err := e.ctl("sendrawtransaction", item.raw)
				mu.Lock()
				switch {
				case err != nil:
					sendErrs = append(sendErrs, err)
				case out != item.tx.id.String():
					sendErrs = append(sendErrs, fmt.Errorf("sendrawtransaction returned %s, want %s", out, item.tx.id))
				default:
					accepted = append(accepted, item.tx)
				}
				mu.Unlock()
				sentN.Add(1)
			}
		}()
	}
	var miners sync.WaitGroup
	miners.Add(1)
	go func() {
		defer miners.Done()
		for !done.Load() {
			out, err := e.ctl("generatetoaddress", "1", w.Address.EncodeAddress())
			mu.Lock()
			if err != nil {
				mineErrs = append(mineErrs, err)
			} else {
				var hs []string
				if err := json.Unmarshal([]byte(out), &hs); err != nil || len(hs) != 1 {
					mineErrs = append(mineErrs, fmt.Errorf("generatetoaddress output %q", out))
				} else {
					blocks = append(blocks, hs[0])
				}
			}
			mu.Unlock()
			time.Sleep(400 * time.Millisecond)
		}
	}()

	// Kill one validator once a third of the transactions are in flight.
	for sentN.Load() < fanout/3 {
		time.Sleep(50 * time.Millisecond)
	}
	killedAt := time.Now()
	e.dc(t, "kill", "-s", "SIGKILL", "txvalidator-1")
	t.Logf("killed txvalidator-1 after %d of %d transactions, %d blocks", sentN.Load(), fanout, len(blocks))
	senders.Wait()
	done.Store(true)
	miners.Wait()
	t.Logf("stream done %.1fs after the kill: %d accepted, %d blocks", time.Since(killedAt).Seconds(), len(accepted), len(blocks))
	if len(sendErrs) > 0 {
		t.Fatalf("%d transactions refused or lost, first: %v", len(sendErrs), sendErrs[0])
	}
	if len(mineErrs) > 0 {
		t.Fatalf("%d generatetoaddress calls failed, first: %v", len(mineErrs), mineErrs[0])
	}
	if ps := e.dc(t, "ps", "txvalidator-1"); !strings.Contains(ps, "Exit") {
		t.Fatalf("txvalidator-1 is not down after the kill:\n%s", ps)
	}

	// 4. Mine what is left; every accepted transaction must be in a block,
	// the mempool empty, every new coin unspent and every old coin spent.
	final := decode[[]string](t, e.ok(t, "generatetoaddress", "1", w.Address.EncodeAddress()))
	blocks = append(blocks, final...)
	height += len(blocks)
	if got := e.ok(t, "getblockcount"); got != fmt.Sprint(height) {
		t.Fatalf("getblockcount = %s, want %d (%d blocks mined in the stream)", got, height, len(blocks))
	}
	if got := e.ok(t, "getbestblockhash"); got != blocks[len(blocks)-1] {
		t.Fatalf("getbestblockhash = %s, want the last mined %s", got, blocks[len(blocks)-1])
	}
	if mp := decode[[]string](t, e.ok(t, "getrawmempool")); len(mp) != 0 {
		t.Fatalf("mempool still holds %d transactions after mining", len(mp))
	}
	inBlocks := map[string]bool{}
	for _, h := range blocks {
		b := decode[map[string]any](t, e.ok(t, "getblock", h, "1"))
		for _, id := range b["tx"].([]any)[1:] {
			inBlocks[id.(string)] = true
		}
	}
	if len(inBlocks) != len(accepted) {
		t.Fatalf("%d transactions in the stream's blocks, %d accepted", len(inBlocks), len(accepted))
	}
	for _, s := range accepted {
		if !inBlocks[s.id.String()] {
			t.Fatalf("accepted transaction %s is in no block", s.id)
		}
	}
	info := decode[map[string]any](t, e.ok(t, "getblockchaininfo"))
	if info["blocks"] != info["headers"] || info["blocks"] != float64(height) {
		t.Fatalf("getblockchaininfo blocks %v headers %v, want both %d", info["blocks"], info["headers"], height)
	}
	checkCoins(t, e, accepted[:min(len(accepted), 60)], fanID, fanout)
	t.Logf("%d transactions and %d blocks through the cluster with one validator killed; height %d", len(accepted), len(blocks), height)
}

// checkCoins checks that each sampled new coin is unspent with its value
// and that the fan-out's coins are spent.
func checkCoins(t *testing.T, e env, sample []sent, fanID chainhash.Hash, fanout int) {
	t.Helper()
	for _, s := range sample {
		out := decode[map[string]any](t, e.ok(t, "gettxout", s.id.String(), "0"))
		if got := int64(out["value"].(float64)*1e8 + 0.5); got != s.value {
			t.Fatalf("gettxout %s:0 value %d, want %d", s.id, got, s.value)
		}
	}
	for i := 0; i < fanout; i += fanout / 10 {
		if got := e.ok(t, "gettxout", fanID.String(), fmt.Sprint(i)); got != "" {
			t.Fatalf("fan-out coin %d still unspent: %s", i, got)
		}
	}
}

func containsTx(t *testing.T, e env, block, txid string) bool {
	t.Helper()
	b := decode[map[string]any](t, e.ok(t, "getblock", block, "1"))
	for _, id := range b["tx"].([]any) {
		if id == txid {
			return true
		}
	}
	return false
}
