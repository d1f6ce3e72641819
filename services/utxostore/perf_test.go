package utxostore

import (
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

// perfChain builds 2n blocks shaped like the bench's: blocks 1..n fund
// (a coinbase of `inputs` outputs), blocks n+1..2n each spend one funding
// coinbase, three inputs per transaction and one output each, with a
// one-output coinbase.
func perfChain(genesis chainhash.Hash, n, inputs int) []*wire.MsgBlock {
	var blocks []*wire.MsgBlock
	parent := genesis
	var funding []*wire.MsgTx
	for h := 1; h <= 2*n; h++ {
		var txs []*wire.MsgTx
		if h <= n {
			var outs []*wire.TxOut
			for i := 0; i < inputs; i++ {
				outs = append(outs, wire.NewTxOut(int64(1000+i), p2wpkh(uint32(h)<<16|uint32(i))))
			}
			txs = append(txs, coinbaseTx(int32(h), 0, outs...))
			funding = append(funding, txs[0])
		} else {
			txs = append(txs, coinbaseTx(int32(h), 0, wire.NewTxOut(50e8, p2wpkh(uint32(h)))))
			id := funding[h-n-1].TxHash()
			for i := 0; i+2 < inputs; i += 3 {
				ins := []wire.OutPoint{{Hash: id, Index: uint32(i)}, {Hash: id, Index: uint32(i + 1)}, {Hash: id, Index: uint32(i + 2)}}
				txs = append(txs, spendTx(ins, wire.NewTxOut(2000, p2wpkh(uint32(h)<<16|uint32(i)|0x8000))))
			}
		}
		b := makeBlock(parent, uint32(h), txs...)
		blocks = append(blocks, b)
		parent = b.BlockHash()
	}
	return blocks
}

// BenchmarkConnect measures what blockvalidator asks of the store for a
// 3000-input block whose parent is the tip: PrepareConnect (the spends
// and BIP30: all outputs are new), then the connect by name, answered
// before its recording pass, which is timed (started at once, as the
// next call to the store starts it) until it is done; with and
// without the coin cache and the key filter.
func BenchmarkConnect(b *testing.B) {
	for _, c := range []struct{ cacheMB, filterMB int }{{0, 0}, {64, 0}, {64, DefaultFilterMB}} {
		b.Run(fmt.Sprintf("coin-cache-%dMB/filter-%dMB", c.cacheMB, c.filterMB), func(b *testing.B) {
			genesis := *regtest(b).Params.GenesisHash
			const n = 30
			blocks := perfChain(genesis, n, 3000)
			st, err := openStore(storeOptions{dir: b.TempDir(), cacheMB: 64, memTableMB: 128, coinCacheMB: c.cacheMB,
				filterBytes: c.filterMB << 20, flushEvery: time.Hour, genesis: genesis}, discardLog())
			if err != nil {
				b.Fatal(err)
			}
			defer st.close()
			fundStore(b, st, blocks[:n])
			var prepare, connect, record time.Duration
			for h := n + 1; h <= len(blocks); h++ {
				ch := blockchanges.Of(blocks[h-1])
				t0 := time.Now()
				if _, _, err := st.prepare(ch, int32(h), true); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := st.connectPrepared(ch.Hash, int32(h)); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				st.lock() // hurries the recording pass, which holds mu until done
				st.mu.Unlock()
				prepare += t1.Sub(t0)
				connect += t2.Sub(t1)
				record += time.Since(t2)
			}
			b.ReportMetric(float64(prepare.Microseconds())/1000/n, "prepare-ms/block")
			b.ReportMetric(float64(connect.Microseconds())/1000/n, "connect-ms/block")
			b.ReportMetric(float64(record.Microseconds())/1000/n, "record-ms/block")
		})
	}
}

// fundStore connects the funding blocks (a separate function, so that
// profiles can leave it out).
func fundStore(b *testing.B, st *store, blocks []*wire.MsgBlock) {
	for h := 1; h <= len(blocks); h++ {
		if _, err := st.connect(blockchanges.Of(blocks[h-1]), int32(h)); err != nil {
			b.Fatal(err)
		}
	}
}
