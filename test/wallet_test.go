package test

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

// wallet is one P2WPKH key on regtest, enough to spend coinbases in tests.
type wallet struct {
	key     *btcec.PrivateKey
	address address.Address
	script  []byte
}

func newWallet(t *testing.T) *wallet {
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
	return &wallet{key: key, address: addr, script: script}
}

// coin is an output the wallet can spend.
type coin struct {
	txid  chainhash.Hash
	index uint32
	value int64
}

// spend builds and signs a transaction spending c to pay (one output per
// amount, to the scripts given) and returns its hex and txid.
func (w *wallet) spend(t *testing.T, c coin, outs ...*wire.TxOut) (string, chainhash.Hash) {
	t.Helper()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&c.txid, c.index), nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(w.script, c.value)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	wit, err := txscript.WitnessSignature(tx, hashes, 0, c.value, w.script, txscript.SigHashAll, w.key, true)
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
