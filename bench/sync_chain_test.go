package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/mutation"
)

// syncChainCfg shapes the chain of the sync row: syncMature blocks of
// coinbases only, one fan-out block, then `blocks` blocks of perBlock
// one-input two-output P2WPKH spends each.
type syncChainCfg struct {
	blocks   int
	perBlock int
}

const (
	// syncMature coinbase-only blocks come first, so that the fan-out
	// block can spend the earliest coinbases.
	syncMature = 110
	// syncKeys is how many keys the outputs are paid to, in turn.
	syncKeys = 16
	// syncTxFee is what every spend pays.
	syncTxFee = 1000
	// syncFanFee is what each fan-out transaction pays.
	syncFanFee = 100_000
	// syncCacheFormat changes whenever the generated chain does.
	syncCacheFormat = 1
)

// syncChain is the generated chain, genesis excluded.
type syncChain struct {
	cfg    syncChainCfg
	params *chaincfg.Params
	blocks []*wire.MsgBlock
	ntx    int // transactions other than coinbases
}

func (c *syncChain) tip() chainhash.Hash { return c.blocks[len(c.blocks)-1].BlockHash() }

// cacheDir is where the generated chain is kept between runs.
func (cfg syncChainCfg) cacheDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("btcmesh-bench-sync-v%d-b%d-t%d", syncCacheFormat, cfg.blocks, cfg.perBlock))
}

// syncKey is one P2WPKH key of the chain, derived from its index.
type syncKey struct {
	priv     *btcec.PrivateKey
	pkScript []byte
}

func newSyncKey(t testing.TB, i int) *syncKey {
	t.Helper()
	var b [32]byte
	b[0], b[1] = 0x5c, 0x11
	binary.BigEndian.PutUint32(b[28:], uint32(i))
	priv, _ := btcec.PrivKeyFromBytes(b[:])
	pk, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).
		AddData(address.Hash160(priv.PubKey().SerializeCompressed())).Script()
	if err != nil {
		t.Fatal(err)
	}
	return &syncKey{priv: priv, pkScript: pk}
}

// syncCoin is a spendable output of the chain.
type syncCoin struct {
	op    wire.OutPoint
	value int64
	key   int
}

// loadSyncChain returns the chain for cfg from the cache, or generates
// and caches it. Blocks are restamped to end a minute ago when the cached
// tip is older than 6 hours (btcd serves headers only while its tip is
// less than a day old). It reports whether the transactions came from
// the cache and how long loading or generating took.
func loadSyncChain(t testing.TB, cfg syncChainCfg) (c *syncChain, cached bool, took time.Duration) {
	t.Helper()
	start := time.Now()
	path := filepath.Join(cfg.cacheDir(), "chain.bin")
	c, err := readSyncChain(path, cfg)
	if err != nil {
		c = genSyncChain(t, cfg)
	} else {
		cached = true
	}
	tipTime := c.blocks[len(c.blocks)-1].Header.Timestamp
	if !cached || time.Since(tipTime) > 6*time.Hour {
		c.restamp(time.Now().Add(-time.Minute))
		if err := c.write(path); err != nil {
			t.Fatalf("cache the sync chain: %v", err)
		}
	}
	return c, cached, time.Since(start)
}

// genSyncChain builds the chain: first every transaction unsigned (a
// segwit txid does not cover the witness, so the spend graph is fixed
// before anything is signed), then every signature on every core, then
// the blocks.
func genSyncChain(t testing.TB, cfg syncChainCfg) *syncChain {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	keys := make([]*syncKey, syncKeys)
	for i := range keys {
		keys[i] = newSyncKey(t, i)
	}
	nBlocks := syncMature + 1 + cfg.blocks
	bodies := make([][]*wire.MsgTx, nBlocks) // non-coinbase txs per block
	fees := make([]int64, nBlocks)
	coinbases := make([]*wire.MsgTx, nBlocks)
	type sigJob struct {
		tx   *wire.MsgTx
		coin syncCoin
	}
	var jobs []sigJob
	for i := range nBlocks {
		coinbases[i] = syncCoinbase(t, int32(i+1), params, keys[0].pkScript)
	}
	// Fan-out: enough early coinbases for ten blocks' worth of coins.
	var queue []syncCoin
	nFan := min((10*cfg.perBlock+99)/100, syncMature-100)
	if 100*nFan < cfg.perBlock {
		t.Fatalf("sync chain: %d transactions per block, at most %d", cfg.perBlock, 100*nFan)
	}
	for i := range nFan {
		cb := coinbases[i]
		in := syncCoin{op: wire.OutPoint{Hash: cb.TxHash()}, value: cb.TxOut[0].Value}
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: in.op, Sequence: wire.MaxTxInSequenceNum})
		each := (in.value - syncFanFee) / 100
		for j := range 100 {
			tx.AddTxOut(&wire.TxOut{Value: each, PkScript: keys[j%syncKeys].pkScript})
		}
		fees[syncMature] += in.value - 100*each
		bodies[syncMature] = append(bodies[syncMature], tx)
		jobs = append(jobs, sigJob{tx, in})
		h := tx.TxHash()
		for j := range 100 {
			queue = append(queue, syncCoin{op: wire.OutPoint{Hash: h, Index: uint32(j)}, value: each, key: j % syncKeys})
		}
	}
	// Spends: each takes the oldest coin and pays two new ones.
	k := 0
	for b := syncMature + 1; b < nBlocks; b++ {
		for range cfg.perBlock {
			in := queue[0]
			queue = queue[1:]
			tx := wire.NewMsgTx(2)
			tx.AddTxIn(&wire.TxIn{PreviousOutPoint: in.op, Sequence: wire.MaxTxInSequenceNum})
			a := (in.value - syncTxFee) / 2
			k1, k2 := k%syncKeys, (k+1)%syncKeys
			k += 2
			tx.AddTxOut(&wire.TxOut{Value: a, PkScript: keys[k1].pkScript})
			tx.AddTxOut(&wire.TxOut{Value: in.value - syncTxFee - a, PkScript: keys[k2].pkScript})
			fees[b] += syncTxFee
			bodies[b] = append(bodies[b], tx)
			jobs = append(jobs, sigJob{tx, in})
			h := tx.TxHash()
			queue = append(queue, syncCoin{op: wire.OutPoint{Hash: h}, value: a, key: k1},
				syncCoin{op: wire.OutPoint{Hash: h, Index: 1}, value: in.value - syncTxFee - a, key: k2})
		}
	}
	// Sign (single-input transactions) on every core.
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				j := jobs[i]
				key := keys[j.coin.key]
				fetch := txscript.NewCannedPrevOutputFetcher(key.pkScript, j.coin.value)
				hashes := txscript.NewTxSigHashes(j.tx, fetch)
				wit, err := txscript.WitnessSignature(j.tx, hashes, 0, j.coin.value, key.pkScript, txscript.SigHashAll, key.priv, true)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				j.tx.TxIn[0].Witness = wit
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("sign sync chain: %v", err)
	default:
	}
	c := &syncChain{cfg: cfg, params: params, ntx: len(jobs)}
	for i := range nBlocks {
		cb := coinbases[i]
		cb.TxOut[0].Value += fees[i]
		mb := &wire.MsgBlock{Header: wire.BlockHeader{Version: 0x20000000, Bits: params.PowLimitBits}}
		mb.AddTransaction(cb)
		for _, tx := range bodies[i] {
			mb.AddTransaction(tx)
		}
		if len(bodies[i]) > 0 {
			var nonce [32]byte
			cb.TxIn[0].Witness = wire.TxWitness{nonce[:]}
			cb.AddTxOut(&wire.TxOut{PkScript: mutation.CommitmentScript(btcutil.NewBlock(mb).Transactions(), nonce[:])})
		}
		mb.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(mb).Transactions(), false)
		c.blocks = append(c.blocks, mb)
	}
	return c
}

// syncCoinbase is the BIP34 coinbase of height paying the subsidy (fees
// are added later) to pkScript.
func syncCoinbase(t testing.TB, height int32, params *chaincfg.Params, pkScript []byte) *wire.MsgTx {
	t.Helper()
	script, err := txscript.NewScriptBuilder().AddInt64(int64(height)).AddData([]byte("btcmesh-bench-sync")).Script()
	if err != nil {
		t.Fatal(err)
	}
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript: script, Sequence: wire.MaxTxInSequenceNum})
	cb.AddTxOut(&wire.TxOut{Value: blockchain.CalcBlockSubsidy(height, params), PkScript: pkScript})
	return cb
}

// restamp links the headers from genesis with timestamps one second
// apart ending at end, and solves them (regtest work: a try or two each).
// Transactions do not commit to headers, so only the headers change.
func (c *syncChain) restamp(end time.Time) {
	end = end.Truncate(time.Second)
	prev := *c.params.GenesisHash
	target := blockchain.CompactToBig(c.params.PowLimitBits)
	n := len(c.blocks)
	for i, mb := range c.blocks {
		mb.Header.PrevBlock = prev
		mb.Header.Timestamp = end.Add(-time.Duration(n-1-i) * time.Second)
		mb.Header.Nonce = 0
		for {
			h := mb.Header.BlockHash()
			if blockchain.HashToBig(&h).Cmp(target) <= 0 {
				prev = h
				break
			}
			mb.Header.Nonce++
		}
	}
}

// write stores the chain as its blocks' wire encodings after a count.
func (c *syncChain) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(len(c.blocks)))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(c.ntx))
	_, err = w.Write(hdr[:])
	for _, mb := range c.blocks {
		if err != nil {
			break
		}
		err = mb.Serialize(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// readSyncChain reads a chain written by write for the same cfg.
func readSyncChain(path string, cfg syncChainCfg) (*syncChain, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:4]))
	if n != syncMature+1+cfg.blocks {
		return nil, fmt.Errorf("%s: %d blocks, want %d", path, n, syncMature+1+cfg.blocks)
	}
	c := &syncChain{cfg: cfg, params: &chaincfg.RegressionNetParams, ntx: int(binary.LittleEndian.Uint32(hdr[4:]))}
	for range n {
		mb := &wire.MsgBlock{}
		if err := mb.Deserialize(r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.blocks = append(c.blocks, mb)
	}
	return c, nil
}
