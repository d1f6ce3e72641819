package testenv

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// Wallet is one P2WPKH key on regtest, enough to spend coinbases in tests.
type Wallet struct {
	// Key signs the wallet's spends.
	Key *btcec.PrivateKey
	// Address is the key's P2WPKH address.
	Address address.Address
	// Script is Address's output script.
	Script []byte
}

// NewWallet makes a wallet with a fresh random key.
func NewWallet(t testing.TB) *Wallet {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := address.NewAddressWitnessPubKeyHash(address.Hash160(key.PubKey().SerializeCompressed()), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		t.Fatal(err)
	}
	return &Wallet{Key: key, Address: addr, Script: script}
}

// Spend builds and signs a version-2 transaction spending prev, an output
// of value paying to w.Script, to outs, and returns its hex and txid.
func (w *Wallet) Spend(t testing.TB, prev wire.OutPoint, value int64, outs ...*wire.TxOut) (string, chainhash.Hash) {
	t.Helper()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&prev, nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(w.Script, value)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	wit, err := txscript.WitnessSignature(tx, hashes, 0, value, w.Script, txscript.SigHashAll, w.Key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf.Bytes()), tx.TxHash()
}
