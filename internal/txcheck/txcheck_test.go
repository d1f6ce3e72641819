package txcheck

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/rules"
)

func spendTx(prev wire.OutPoint, value int64) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: prev, Sequence: wire.MaxTxInSequenceNum})
	tx.AddTxOut(&wire.TxOut{Value: value, PkScript: []byte{txscript.OP_TRUE}})
	return tx
}

// TestChecks runs the non-script checks on good and broken transactions:
// sanity and the coinbase refusal first, then finality, relative locks,
// input amounts and the sigop cost, each broken rule named as Core names
// it, with fee and sigop cost filled as far as the checks got.
func TestChecks(t *testing.T) {
	net, err := chain.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	prev := wire.OutPoint{Hash: [32]byte{7}, Index: 1}
	prevout := func(value int64, height int32, coinbase bool) []Prevout {
		return []Prevout{{Output: &wire.TxOut{Value: value, PkScript: []byte{txscript.OP_TRUE}},
			Height: height, Coinbase: coinbase, MedianTimePast: 1_600_000_000}}
	}
	cc := Context{Height: 500, MedianTimePast: 1_700_000_000, BlockTime: 1_700_000_100}

	// locked spends prev with the given version, locktime and sequence.
	locked := func(version int32, lockTime, sequence uint32) *wire.MsgTx {
		tx := spendTx(prev, 9_000)
		tx.Version, tx.LockTime, tx.TxIn[0].Sequence = version, lockTime, sequence
		return tx
	}
	good := spendTx(prev, 9_000)
	nonFinal := locked(2, 600, 0)
	relLock := locked(2, 0, 50)                                     // 50 blocks after height 480: not before 530
	oldVersion := locked(1, 0, 50)                                  // BIP68 does not apply to version 1
	timeLock := locked(2, 0, wire.SequenceLockTimeIsSeconds|0xffff) // ~388 days
	lockSpan := int64(0xffff) << wire.SequenceLockTimeGranularity
	timeLocked := prevout(10_000, 400, false)
	timeLocked[0].MedianTimePast = cc.MedianTimePast - lockSpan + 1 // one second short
	timeMet := prevout(10_000, 400, false)
	timeMet[0].MedianTimePast = cc.MedianTimePast - lockSpan
	sigops := spendTx(prev, 9_000)
	sigops.TxOut[0].PkScript = bytes.Repeat([]byte{txscript.OP_CHECKSIG}, 20_001) // cost 4 x 20,001 > 80,000
	noInputs := spendTx(prev, 9_000)
	noInputs.TxIn = nil

	cases := []struct {
		name     string
		tx       *wire.MsgTx
		prevouts []Prevout
		rule     rules.Kind // "" = valid
		fee      int64
		sigops   int64
	}{
		{"good", good, prevout(10_000, 400, false), "", 1_000, 0},
		{"version 1 ignores relative locks", oldVersion, prevout(10_000, 480, false), "", 1_000, 0},
		{"overspend", good, prevout(8_000, 400, false), "bad-txns-in-belowout", 0, 0},
		{"immature coinbase", good, prevout(10_000, 450, true), "bad-txns-premature-spend-of-coinbase", 0, 0},
		{"non-final", nonFinal, prevout(10_000, 400, false), rules.NonFinal, 0, 0},
		{"relative height lock", relLock, prevout(10_000, 480, false), rules.NonBIP68Final, 0, 0},
		{"relative time lock met", timeLock, timeMet, "", 1_000, 0},
		{"relative time lock", timeLock, timeLocked, rules.NonBIP68Final, 0, 0},
		{"missing output", good, []Prevout{{Height: 400}}, rules.MissingInputs, 0, 0},
		{"prevout count", good, nil, rules.MissingInputs, 0, 0},
		{"sigop cost", sigops, prevout(10_000, 400, false), rules.BadBlockSigops, 1_000, 4 * 20_001},
	}
	for _, c := range cases {
		r, err := Contextual(btcutil.NewTx(c.tx), c.prevouts, cc, net)
		if r.Fee != c.fee || r.SigopCost != c.sigops {
			t.Errorf("%s: fee %d, sigop cost %d; want %d and %d", c.name, r.Fee, r.SigopCost, c.fee, c.sigops)
		}
		if c.rule == "" {
			if err != nil {
				t.Errorf("%s: %v, want valid", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: valid, want rule %s", c.name, c.rule)
		} else if kind, _ := Rejection(err); kind != c.rule {
			t.Errorf("%s: %v (rule %q), want rule %s", c.name, err, kind, c.rule)
		}
	}

	coinbase := wire.NewMsgTx(1)
	coinbase.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: wire.MaxPrevOutIndex},
		SignatureScript: []byte{0x02, 0xf4, 0x01, 0x00}, Sequence: wire.MaxTxInSequenceNum})
	coinbase.AddTxOut(&wire.TxOut{Value: 50e8, PkScript: []byte{txscript.OP_TRUE}})
	for name, c := range map[string]struct {
		err  error
		rule rules.Kind
	}{
		"good":                {Sanity(btcutil.NewTx(good)), ""},
		"coinbase":            {Sanity(btcutil.NewTx(coinbase)), CoinbaseJob},
		"coinbase, no sanity": {NotCoinbase(coinbase), CoinbaseJob},
		"no inputs":           {Sanity(btcutil.NewTx(noInputs)), "bad-txns-vin-empty"},
	} {
		if c.rule == "" {
			if c.err != nil {
				t.Errorf("sanity %s: %v, want nil", name, c.err)
			}
			continue
		}
		if c.err == nil {
			t.Errorf("sanity %s: nil, want rule %s", name, c.rule)
		} else if kind, _ := Rejection(c.err); kind != c.rule {
			t.Errorf("sanity %s: %v (rule %q), want %s", name, c.err, kind, c.rule)
		}
	}
}

// TestRejection checks that a rule error keeps its bare detail and any
// other error is an internal error with its whole text.
func TestRejection(t *testing.T) {
	kind, detail := Rejection(rules.New(rules.NonFinal, "locktime %d", 5))
	if kind != rules.NonFinal || detail != "locktime 5" {
		t.Errorf("rule error: %q %q", kind, detail)
	}
	kind, detail = Rejection(bytes.ErrTooLarge)
	if kind != "internal-error" || detail != bytes.ErrTooLarge.Error() {
		t.Errorf("plain error: %q %q", kind, detail)
	}
}
