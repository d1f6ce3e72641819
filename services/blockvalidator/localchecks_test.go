package blockvalidator

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/wire/v2"

	commonv1 "github.com/btcmesh/btcmesh/proto/btcmesh/common/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/rules"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// TestLocalChecks runs the in-process non-script checks (used when every
// transaction of a block is covered by the script cache) on good and bad
// transactions: fees and sigop costs come back as txvalidator computes
// them, and each broken rule is named as txvalidator names it.
func TestLocalChecks(t *testing.T) {
	s := &Service{deps: runner.Deps{Network: regtest(t)}}
	prev := wire.OutPoint{Hash: [32]byte{7}, Index: 1}
	prevout := func(value int64, height int32, coinbase bool) *txvalidatorv1.Prevout {
		return &txvalidatorv1.Prevout{Output: &commonv1.TxOut{Value: value, PkScript: []byte{0x51}},
			Height: height, Coinbase: coinbase, MedianTimePast: 1_600_000_000}
	}
	cc := &txvalidatorv1.ChainContext{Height: 500, MedianTimePast: 1_700_000_000, BlockTime: 1_700_000_100}

	good := spendTx(prev, 9_000)
	nonFinal := spendTx(prev, 9_000)
	nonFinal.LockTime = 600
	nonFinal.TxIn[0].Sequence = 0
	relLock := spendTx(prev, 9_000)
	relLock.TxIn[0].Sequence = 50 // 50 blocks after height 480: not before 530
	cases := []struct {
		name    string
		tx      *wire.MsgTx
		prevout *txvalidatorv1.Prevout
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
	var txs []*btcutil.Tx
	req := &txvalidatorv1.ValidateRequest{Context: cc, Mode: txvalidatorv1.Mode_MODE_FULL}
	txs = append(txs, btcutil.NewTx(coinbaseTx(t, 500, 50e8)))
	for _, c := range cases {
		txs = append(txs, btcutil.NewTx(c.tx))
		var pv []*txvalidatorv1.Prevout
		if c.prevout != nil {
			pv = []*txvalidatorv1.Prevout{c.prevout}
		}
		req.Jobs = append(req.Jobs, &txvalidatorv1.TxJob{Prevouts: pv, SkipScripts: true})
	}
	resp := s.localChecks(txs, req)
	for i, c := range cases {
		r := resp.GetResults()[i]
		if c.rule == "" {
			if !r.GetValid() || r.GetFee() != c.fee || r.GetSigopCost() != 0 || r.GetWeight() == 0 {
				t.Errorf("%s: %+v, want valid with fee %d and sigop cost 0", c.name, r, c.fee)
			}
			continue
		}
		if r.GetValid() || r.GetRejection().GetRule() != string(c.rule) {
			t.Errorf("%s: %+v, want rule %s", c.name, r, c.rule)
		}
	}
}
