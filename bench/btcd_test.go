package bench

import (
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/database"
	_ "github.com/btcsuite/btcd/database/ffldb" // registers the ffldb driver
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// btcdChain is btcd's blockchain package on an ffldb database in a
// temporary directory, with its own signature and sighash caches.
type btcdChain struct {
	chain     *blockchain.BlockChain
	sigCache  *txscript.SigCache
	hashCache *txscript.HashCache
	params    *chaincfg.Params
}

func newBtcdChain(t testing.TB, params *chaincfg.Params) *btcdChain {
	t.Helper()
	db, err := database.Create("ffldb", t.TempDir(), params.Net)
	if err != nil {
		t.Fatalf("btcd database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c := &btcdChain{
		sigCache:  txscript.NewSigCache(100_000), // btcd's default --sigcachemaxsize
		hashCache: txscript.NewHashCache(100_000),
		params:    params,
	}
	c.chain, err = blockchain.New(&blockchain.Config{
		DB:               db,
		ChainParams:      params,
		TimeSource:       blockchain.NewMedianTime(),
		SigCache:         c.sigCache,
		HashCache:        c.hashCache,
		UtxoCacheMaxSize: 250 << 20, // btcd's default --utxocachemaxsize
	})
	if err != nil {
		t.Fatalf("btcd chain: %v", err)
	}
	return c
}

// process decodes a serialized block, as btcd's peer code does with a
// block message before its sync manager hands it on, and runs
// ProcessBlock; it fails unless the block joins the main chain. Both
// sides of a timed row so start from the block's bytes.
func (c *btcdChain) process(t testing.TB, raw []byte) {
	t.Helper()
	blk, err := btcutil.NewBlockFromBytes(raw)
	if err != nil {
		t.Fatalf("btcd decode: %v", err)
	}
	mainChain, orphan, err := c.chain.ProcessBlock(blk, blockchain.BFNone)
	if err != nil || !mainChain || orphan {
		t.Fatalf("btcd ProcessBlock %s: main %v orphan %v err %v", blk.Hash(), mainChain, orphan, err)
	}
}

// orphan runs ProcessBlock on a block whose parent btcd lacks.
func (c *btcdChain) orphan(t testing.TB, mb *wire.MsgBlock) {
	t.Helper()
	_, orphan, err := c.chain.ProcessBlock(btcutil.NewBlock(mb), blockchain.BFNone)
	if err != nil || !orphan {
		t.Fatalf("btcd ProcessBlock %s: orphan %v err %v", mb.BlockHash(), orphan, err)
	}
}

// warm validates txs' scripts with the chain's caches, as btcd's mempool
// does on acceptance, so that connecting a block holding them finds every
// signature and sighash midstate cached.
func (c *btcdChain) warm(t testing.TB, coins []coin, txs []*wire.MsgTx, height int32) {
	t.Helper()
	view := blockchain.NewUtxoViewpoint()
	entries := view.Entries()
	for _, cn := range coins {
		entries[cn.op] = blockchain.NewUtxoEntry(&wire.TxOut{Value: cn.value, PkScript: cn.key.pkScript}, height, false)
	}
	flags := txscript.StandardVerifyFlags
	for _, tx := range txs {
		if err := blockchain.ValidateTransactionScripts(btcutil.NewTx(tx), view, flags, c.sigCache, c.hashCache); err != nil {
			t.Fatalf("btcd warm-up of %s: %v", tx.TxHash(), err)
		}
	}
}
