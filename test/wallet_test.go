package test

import (
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// wallet is one P2WPKH key on regtest, enough to spend coinbases in tests.
type wallet struct{ *testenv.Wallet }

func newWallet(t *testing.T) *wallet { return &wallet{testenv.NewWallet(t)} }

// coin is an output the wallet can spend.
type coin struct {
	txid  chainhash.Hash
	index uint32
	value int64
}

// spend builds and signs a transaction spending c to outs and returns its
// hex and txid.
func (w *wallet) spend(t *testing.T, c coin, outs ...*wire.TxOut) (string, chainhash.Hash) {
	t.Helper()
	return w.Spend(t, wire.OutPoint{Hash: c.txid, Index: c.index}, c.value, outs...)
}
