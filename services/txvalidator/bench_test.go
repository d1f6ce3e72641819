package txvalidator

import (
	"context"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

// BenchmarkLargeTx validates one 3,000-input P2WPKH transaction with a cold
// signature cache; inputs/s is the number to compare with btcd.
func BenchmarkLargeTx(b *testing.B) {
	alice, bob := newWallet(11), newWallet(12)
	var coins []coin
	for i := range 3000 {
		coins = append(coins, fundingCoin(alice, p2wpkh, uint32(i), 10_000))
	}
	_, job := build(b, txSpec{coins: coins, outs: []*wire.TxOut{out(b, bob, p2wpkh, 3000*10_000-100_000)}})
	e, _ := regtestEngine(b, DefaultConfig())
	req := fullReq(false, job)
	b.ResetTimer()
	for b.Loop() {
		e.sigCache = nil // cold: every signature verified
		resp, err := e.validate(context.Background(), req, "bench")
		if err != nil || !resp.GetResults()[0].GetValid() {
			b.Fatalf("%v %v", err, resp)
		}
	}
	b.ReportMetric(float64(b.N*3000)/b.Elapsed().Seconds(), "inputs/s")
}
