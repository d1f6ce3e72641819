package bench

import (
	"bytes"
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

// key is one P2WPKH key of the generated chain.
type key struct {
	priv     *btcec.PrivateKey
	pkScript []byte
}

func newKey(t testing.TB, seed uint32) *key {
	t.Helper()
	var b [32]byte
	b[0] = 1
	b[28], b[29], b[30], b[31] = byte(seed>>24), byte(seed>>16), byte(seed>>8), byte(seed)
	priv, _ := btcec.PrivKeyFromBytes(b[:])
	pk, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).
		AddData(address.Hash160(priv.PubKey().SerializeCompressed())).Script()
	if err != nil {
		t.Fatal(err)
	}
	return &key{priv: priv, pkScript: pk}
}

// coin is a spendable P2WPKH output.
type coin struct {
	op    wire.OutPoint
	value int64
	key   *key
}

// gen builds a regtest chain that btcmesh and btcd both accept: BIP34
// coinbases paying to P2WPKH, witness commitments, every soft fork active.
type gen struct {
	params *chaincfg.Params
	keys   []*key
	tip    chainhash.Hash
	height int32
	time   time.Time
	blocks []*wire.MsgBlock // blocks after genesis, in order
}

func newGen(t testing.TB, nKeys int) *gen {
	g := &gen{params: &chaincfg.RegressionNetParams}
	for i := range nKeys {
		g.keys = append(g.keys, newKey(t, uint32(i)))
	}
	g.tip = *g.params.GenesisHash
	// btcd enforces BIP16 (so also segwit) by timestamp, from April 2012:
	// the chain starts two days ago, a minute a block (room for 2,880
	// blocks before the two-hour future limit).
	g.time = time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	return g
}

// block appends a solved block holding txs (after the coinbase, which
// pays subsidy plus fees to keys[0]).
func (g *gen) block(t testing.TB, fees int64, txs ...*wire.MsgTx) *wire.MsgBlock {
	t.Helper()
	h := g.height + 1
	script, err := txscript.NewScriptBuilder().AddInt64(int64(h)).AddData([]byte("btcmesh-bench")).Script()
	if err != nil {
		t.Fatal(err)
	}
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript: script, Sequence: wire.MaxTxInSequenceNum})
	cb.AddTxOut(&wire.TxOut{Value: blockchain.CalcBlockSubsidy(h, g.params) + fees, PkScript: g.keys[0].pkScript})
	mb := &wire.MsgBlock{Header: wire.BlockHeader{
		Version: 0x20000000, PrevBlock: g.tip, Timestamp: g.time.Add(time.Minute), Bits: g.params.PowLimitBits,
	}}
	mb.AddTransaction(cb)
	witness := false
	for _, tx := range txs {
		mb.AddTransaction(tx)
		witness = witness || tx.HasWitness()
	}
	if witness {
		var nonce [32]byte
		cb.TxIn[0].Witness = wire.TxWitness{nonce[:]}
		cb.AddTxOut(&wire.TxOut{PkScript: mutation.CommitmentScript(btcutil.NewBlock(mb).Transactions(), nonce[:])})
	}
	mb.Header.MerkleRoot = blockchain.CalcMerkleRoot(btcutil.NewBlock(mb).Transactions(), false)
	target := blockchain.CompactToBig(g.params.PowLimitBits)
	for {
		hash := mb.Header.BlockHash()
		if blockchain.HashToBig(&hash).Cmp(target) <= 0 {
			g.tip, g.height, g.time = hash, h, mb.Header.Timestamp
			g.blocks = append(g.blocks, mb)
			return mb
		}
		mb.Header.Nonce++
	}
}

// spend builds and signs a transaction spending coins into outputs of the
// given values paid to the keys in turn.
func (g *gen) spend(t testing.TB, coins []coin, values []int64, to []*key) *wire.MsgTx {
	t.Helper()
	tx := wire.NewMsgTx(2)
	prev := make(map[wire.OutPoint]*wire.TxOut, len(coins))
	for _, c := range coins {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: c.op, Sequence: wire.MaxTxInSequenceNum})
		prev[c.op] = &wire.TxOut{Value: c.value, PkScript: c.key.pkScript}
	}
	for i, v := range values {
		tx.AddTxOut(&wire.TxOut{Value: v, PkScript: to[i%len(to)].pkScript})
	}
	hashes := txscript.NewTxSigHashes(tx, txscript.NewMultiPrevOutFetcher(prev))
	for i, c := range coins {
		w, err := txscript.WitnessSignature(tx, hashes, i, c.value, c.key.pkScript, txscript.SigHashAll, c.key.priv, true)
		if err != nil {
			t.Fatal(err)
		}
		tx.TxIn[i].Witness = w
	}
	return tx
}

// outputs lists tx's outputs as coins of keys (in the order spend paid them).
func outputs(tx *wire.MsgTx, to []*key) []coin {
	h := tx.TxHash()
	out := make([]coin, len(tx.TxOut))
	for i, o := range tx.TxOut {
		out[i] = coin{op: wire.OutPoint{Hash: h, Index: uint32(i)}, value: o.Value, key: to[i%len(to)]}
	}
	return out
}

// spendMany builds len(coins)/perTx transactions of perTx inputs and one
// output each, paying feePerInput per input, signing on every core.
func (g *gen) spendMany(t testing.TB, coins []coin, perTx int, feePerInput int64) []*wire.MsgTx {
	t.Helper()
	n := len(coins) / perTx
	txs := make([]*wire.MsgTx, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				cs := coins[i*perTx : (i+1)*perTx]
				var total int64
				for _, c := range cs {
					total += c.value
				}
				to := g.keys[(i+1)%len(g.keys)]
				txs[i] = g.spend(t, cs, []int64{total - feePerInput*int64(perTx)}, []*key{to})
			}
		}()
	}
	wg.Wait()
	return txs
}

// fund mines 100+n blocks and one block of fan-out transactions that turn
// the first n coinbases into perCoinbase outputs each; it returns them.
func (g *gen) fund(t testing.TB, n, perCoinbase int) []coin {
	t.Helper()
	var cbs []*wire.MsgTx
	for range 100 + n {
		cbs = append(cbs, g.block(t, 0).Transactions[0])
	}
	var fan []*wire.MsgTx
	var coins []coin
	const fee = 100_000
	for i := range n {
		cb := cbs[i]
		value := (cb.TxOut[0].Value - fee) / int64(perCoinbase)
		values := make([]int64, perCoinbase)
		for j := range values {
			values[j] = value
		}
		tx := g.spend(t, []coin{{op: wire.OutPoint{Hash: cb.TxHash()}, value: cb.TxOut[0].Value, key: g.keys[0]}},
			values, g.keys)
		fan = append(fan, tx)
		coins = append(coins, outputs(tx, g.keys)...)
	}
	// A fan-out transaction is about 62 kB at 2,000 outputs: a dozen
	// per block keeps every funding block under the 1 MB base size.
	const perBlock = 12
	for lo := 0; lo < len(fan); lo += perBlock {
		part := fan[lo:min(lo+perBlock, len(fan))]
		var fees int64
		for _, tx := range part {
			fees += fanFee(cbs, tx)
		}
		g.block(t, fees, part...)
	}
	return coins
}

func fanFee(cbs []*wire.MsgTx, tx *wire.MsgTx) int64 {
	in := int64(0)
	for _, cb := range cbs {
		if cb.TxHash() == tx.TxIn[0].PreviousOutPoint.Hash {
			in = cb.TxOut[0].Value
		}
	}
	for _, o := range tx.TxOut {
		in -= o.Value
	}
	return in
}

// txsFee sums what txs pay, given the coins they spend.
func txsFee(coins []coin, txs []*wire.MsgTx) int64 {
	var fee int64
	for _, c := range coins {
		fee += c.value
	}
	for _, tx := range txs {
		for _, o := range tx.TxOut {
			fee -= o.Value
		}
	}
	return fee
}

func serialize(t testing.TB, b *wire.MsgBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func serializeTx(t testing.TB, tx *wire.MsgTx) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
