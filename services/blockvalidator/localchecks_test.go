package blockvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/txcheck"
)

// TestLocalChecks runs the in-process non-script checks (used when every
// transaction of a block is covered by the script cache) on good and bad
// transactions: fees and sigop costs come back as txvalidator computes
// them, and each broken rule is named as txvalidator names it.
func TestLocalChecks(t *testing.T) {
	s := &Service{deps: runner.Deps{Network: regtest(t)}}
	prev := wire.OutPoint{Hash: [32]byte{7}, Index: 1}
	prevout := func(value int64, height int32, coinbase bool) *txcheck.Prevout {
		return &txcheck.Prevout{Output: &wire.TxOut{Value: value, PkScript: []byte{0x51}},
			Height: height, Coinbase: coinbase, MedianTimePast: 1_600_000_000}
	}
	cc := txcheck.Context{Height: 500, MedianTimePast: 1_700_000_000, BlockTime: 1_700_000_100}

	good := spendTx(prev, 9_000)
	nonFinal := spendTx(prev, 9_000)
	nonFinal.LockTime = 600
	nonFinal.TxIn[0].Sequence = 0
	relLock := spendTx(prev, 9_000)
	relLock.TxIn[0].Sequence = 50 // 50 blocks after height 480: not before 530
	cases := []struct {
		name    string
		tx      *wire.MsgTx
		prevout *txcheck.Prevout
		rule    rules.Kind // "" = valid
		fee     int64
	}{
		{"good", good, prevout(10_000, 400, false), "", 1_000},
		{"overspend", good, prevout(8_000, 400, false), rules.Kind("bad-txns-in-belowout"), 0},
		{"immature coinbase", good, prevout(10_000, 450, true), rules.Kind("bad-txns-premature-spend-of-coinbase"), 0},
		{"non-final", nonFinal, prevout(10_000, 400, false), rules.NonFinal, 0},
		{"relative lock", relLock, prevout(10_000, 480, false), rules.NonBIP68Final, 0},
		{"prevout count", good, nil, rules.MissingInputs, 0},
	}
	txs := []*btcutil.Tx{btcutil.NewTx(coinbaseTx(t, 500, 50e8))}
	pv := [][]txcheck.Prevout{nil}
	for _, c := range cases {
		txs = append(txs, btcutil.NewTx(c.tx))
		var p []txcheck.Prevout
		if c.prevout != nil {
			p = []txcheck.Prevout{*c.prevout}
		}
		pv = append(pv, p)
	}
	out := s.localChecks(txs, pv, cc)
	for i, c := range cases {
		o := out[i]
		if c.rule == "" {
			if o.err != nil || o.fee != c.fee || o.sigops != 0 {
				t.Errorf("%s: %+v, want valid with fee %d and sigop cost 0", c.name, o, c.fee)
			}
			continue
		}
		if kind, _ := txcheck.Rejection(o.err); kind != c.rule {
			t.Errorf("%s: %+v, want rule %s", c.name, o, c.rule)
		}
	}
}
