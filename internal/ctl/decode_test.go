package ctl

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// genesisTxJSON is Bitcoin Core's getblock ... 2 rendering of the genesis
// coinbase (identical on mainnet and regtest).
const genesisTxJSON = `    {
      "txid": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
      "hash": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
      "version": 1,
      "size": 204,
      "vsize": 204,
      "weight": 816,
      "locktime": 0,
      "vin": [
        {
          "coinbase": "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73",
          "sequence": 4294967295
        }
      ],
      "vout": [
        {
          "value": 50.00000000,
          "n": 0,
          "scriptPubKey": {
            "asm": "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f OP_CHECKSIG",
            "desc": "pk(04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f)#vlz6ztea",
            "hex": "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac",
            "type": "pubkey"
          }
        }
      ],
      "hex": "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
    }`

// regtestGenesisJSON is Core's getblock output for the regtest genesis
// block at verbosity 2 on a chain of height 0.
const regtestGenesisJSON = `{
  "hash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
  "confirmations": 1,
  "height": 0,
  "version": 1,
  "versionHex": "00000001",
  "merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
  "time": 1296688602,
  "mediantime": 1296688602,
  "nonce": 2,
  "bits": "207fffff",
  "difficulty": 4.656542373906925e-10,
  "chainwork": "0000000000000000000000000000000000000000000000000000000000000002",
  "nTx": 1,
  "strippedsize": 285,
  "size": 285,
  "weight": 1140,
  "tx": [
` + genesisTxJSON + `
  ]
}
`

func genesisMeta() blockMeta {
	return blockMeta{height: 0, confirmations: 1, medianTime: 1296688602, chainWork: []byte{2}}
}

func TestGenesisBlockVerbosity2MatchesCore(t *testing.T) {
	var out bytes.Buffer
	o := blockJSON(chaincfg.RegressionNetParams.GenesisBlock, genesisMeta(), 2, &chaincfg.RegressionNetParams)
	if err := printResult(&out, o); err != nil {
		t.Fatal(err)
	}
	if out.String() != regtestGenesisJSON {
		t.Fatalf("genesis getblock 2 differs from Core:\n got: %s\nwant: %s", out.String(), regtestGenesisJSON)
	}
}

func TestGenesisBlockVerbosity1ListsTxids(t *testing.T) {
	o := blockJSON(chaincfg.RegressionNetParams.GenesisBlock, genesisMeta(), 1, &chaincfg.RegressionNetParams)
	txs, ok := o.get("tx").([]any)
	if !ok || len(txs) != 1 || txs[0] != "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b" {
		t.Fatalf("tx = %#v", o.get("tx"))
	}
	if o.get("previousblockhash") != nil {
		t.Fatal("genesis must not have previousblockhash")
	}
	next := chainhash.Hash{1}
	m := genesisMeta()
	m.nextHash = next[:]
	o = blockJSON(chaincfg.RegressionNetParams.GenesisBlock, m, 1, &chaincfg.RegressionNetParams)
	if o.get("nextblockhash") != next.String() {
		t.Fatalf("nextblockhash = %v", o.get("nextblockhash"))
	}
}

// fakeDERSig returns a DER-shaped signature with a sighash byte.
func fakeDERSig(hashType byte) []byte {
	sig := []byte{0x30, 0x44, 0x02, 0x20}
	sig = append(sig, bytes.Repeat([]byte{0x11}, 32)...)
	sig = append(sig, 0x02, 0x20)
	sig = append(sig, bytes.Repeat([]byte{0x22}, 32)...)
	return append(sig, hashType)
}

// segwitTx builds a two-input transaction: a P2WPKH spend with a witness
// and a P2PKH-style spend with a scriptSig; outputs pay P2WPKH, P2TR and
// OP_RETURN.
func segwitTx(t *testing.T) *wire.MsgTx {
	t.Helper()
	pub, _ := hex.DecodeString("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	tx := wire.NewMsgTx(2)
	prev1 := chainhash.Hash{0xaa}
	prev2 := chainhash.Hash{0xbb}
	in1 := wire.NewTxIn(wire.NewOutPoint(&prev1, 3), nil, [][]byte{fakeDERSig(0x01), pub})
	in1.Sequence = 0xfffffffd
	sigScript := append([]byte{byte(len(fakeDERSig(0x83)))}, fakeDERSig(0x83)...)
	sigScript = append(sigScript, byte(len(pub)))
	sigScript = append(sigScript, pub...)
	in2 := wire.NewTxIn(wire.NewOutPoint(&prev2, 0), sigScript, nil)
	tx.AddTxIn(in1)
	tx.AddTxIn(in2)
	p2wpkh, _ := hex.DecodeString("0014751e76e8199196d454941c45d1b3a323f1433bd6")
	tx.AddTxOut(wire.NewTxOut(123456789, p2wpkh))
	p2tr, _ := hex.DecodeString("512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	tx.AddTxOut(wire.NewTxOut(1, p2tr))
	tx.AddTxOut(wire.NewTxOut(0, []byte{0x6a, 0x01, 0x05, 0x04, 0xde, 0xad, 0xbe, 0xef}))
	tx.LockTime = 101
	return tx
}

func TestSegwitTxMatchesCoreShape(t *testing.T) {
	tx := segwitTx(t)
	var raw bytes.Buffer
	if err := tx.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	decoded, err := decodeTx(raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	o := txJSON(decoded, &chaincfg.RegressionNetParams, false)

	if o.get("txid") == o.get("hash") {
		t.Fatal("txid and hash (wtxid) must differ for a segwit tx")
	}
	size, weight, vsize := o.get("size").(int), o.get("weight").(int), o.get("vsize").(int)
	if size != raw.Len() || weight != tx.SerializeSizeStripped()*3+raw.Len() || vsize != (weight+3)/4 {
		t.Fatalf("size/weight/vsize = %d/%d/%d", size, weight, vsize)
	}
	if o.get("version") != int64(2) || o.get("locktime") != uint32(101) {
		t.Fatalf("version/locktime = %v/%v", o.get("version"), o.get("locktime"))
	}
	if o.get("hex") != nil {
		t.Fatal("decoderawtransaction shape has no hex")
	}
	vin := o.get("vin").([]any)
	in1 := vin[0].(object)
	if in1.get("txid") != (chainhash.Hash{0xaa}).String() || in1.get("vout") != uint32(3) {
		t.Fatalf("vin[0] = %v", in1)
	}
	ss := in1.get("scriptSig").(object)
	if ss.get("asm") != "" || ss.get("hex") != "" {
		t.Fatalf("empty scriptSig = %v", ss)
	}
	wit := in1.get("txinwitness").([]string)
	if len(wit) != 2 || wit[1] != "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" {
		t.Fatalf("txinwitness = %v", wit)
	}
	if in1.get("sequence") != uint32(0xfffffffd) {
		t.Fatalf("sequence = %v", in1.get("sequence"))
	}
	// Field order as Core: txid, vout, scriptSig, txinwitness, sequence.
	var keys []string
	for _, f := range in1 {
		keys = append(keys, f.key)
	}
	if strings.Join(keys, ",") != "txid,vout,scriptSig,txinwitness,sequence" {
		t.Fatalf("vin keys = %v", keys)
	}
	in2 := vin[1].(object)
	if in2.get("txinwitness") != nil {
		t.Fatal("input without witness must have no txinwitness")
	}
	asm := in2.get("scriptSig").(object).get("asm").(string)
	wantSig := hex.EncodeToString(fakeDERSig(0x83)[:70]) + "[SINGLE|ANYONECANPAY]"
	if asm != wantSig+" 0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" {
		t.Fatalf("scriptSig asm = %s", asm)
	}

	vout := o.get("vout").([]any)
	v0 := vout[0].(object)
	if formatBTC(int64(v0.get("value").(btc))) != "1.23456789" || v0.get("n") != 0 {
		t.Fatalf("vout[0] = %v", v0)
	}
	spk := v0.get("scriptPubKey").(object)
	if spk.get("type") != "witness_v0_keyhash" || spk.get("address") != "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080" {
		t.Fatalf("p2wpkh scriptPubKey = %v", spk)
	}
	if spk.get("asm") != "0 751e76e8199196d454941c45d1b3a323f1433bd6" {
		t.Fatalf("p2wpkh asm = %v", spk.get("asm"))
	}
	desc := spk.get("desc").(string)
	if !strings.HasPrefix(desc, "addr(bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080)#") || withChecksum(strings.Split(desc, "#")[0]) != desc {
		t.Fatalf("p2wpkh desc = %s", desc)
	}
	tr := vout[1].(object).get("scriptPubKey").(object)
	if tr.get("type") != "witness_v1_taproot" ||
		!strings.HasPrefix(tr.get("desc").(string), "rawtr(79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798)#") ||
		!strings.HasPrefix(tr.get("address").(string), "bcrt1p") {
		t.Fatalf("p2tr scriptPubKey = %v", tr)
	}
	ret := vout[2].(object).get("scriptPubKey").(object)
	if ret.get("type") != "nulldata" || ret.get("address") != nil || ret.get("asm") != "OP_RETURN 5 -1874767326" {
		t.Fatalf("op_return scriptPubKey = %v", ret)
	}
	if !strings.HasPrefix(ret.get("desc").(string), "raw(6a010504deadbeef)#") {
		t.Fatalf("op_return desc = %v", ret.get("desc"))
	}
}

func TestDescriptorChecksumVectors(t *testing.T) {
	for in, want := range map[string]string{
		"raw(deadbeef)": "raw(deadbeef)#89f8spxm",
		"pk(04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f)": "pk(04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f)#vlz6ztea",
	} {
		if got := withChecksum(in); got != want {
			t.Errorf("withChecksum(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestScriptAsmLikeCore(t *testing.T) {
	for _, tc := range []struct {
		hex, want string
	}{
		{"76a914751e76e8199196d454941c45d1b3a323f1433bd688ac", "OP_DUP OP_HASH160 751e76e8199196d454941c45d1b3a323f1433bd6 OP_EQUALVERIFY OP_CHECKSIG"},
		{"00", "0"},
		{"4f51600181", "-1 1 16 -1"},
		{"02ff7f", "32767"},
		{"b175b2ba", "OP_CHECKLOCKTIMEVERIFY OP_DROP OP_CHECKSEQUENCEVERIFY OP_CHECKSIGADD"},
		{"4c", "[error]"},
		{"0102", "2"},
		{"02ff", "[error]"},
		{"c0", "OP_UNKNOWN"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		if got := scriptAsm(b, false); got != tc.want {
			t.Errorf("asm(%s) = %q, want %q", tc.hex, got, tc.want)
		}
	}
	// A signature is decoded only in a scriptSig.
	sig := fakeDERSig(0x01)
	script := append([]byte{byte(len(sig))}, sig...)
	if got := scriptAsm(script, false); got != hex.EncodeToString(sig) {
		t.Errorf("scriptPubKey asm decoded a sighash: %s", got)
	}
	if got := scriptAsm(script, true); got != hex.EncodeToString(sig[:len(sig)-1])+"[ALL]" {
		t.Errorf("scriptSig asm = %s", got)
	}
	bad := fakeDERSig(0x07) // undefined sighash type
	script = append([]byte{byte(len(bad))}, bad...)
	if got := scriptAsm(script, true); got != hex.EncodeToString(bad) {
		t.Errorf("undefined sighash decoded: %s", got)
	}
}

func TestDifficulty(t *testing.T) {
	if d := difficulty(0x1d00ffff); d != 1 {
		t.Errorf("difficulty(1d00ffff) = %v", d)
	}
	if s := formatFloat(difficulty(0x207fffff)); s != "4.656542373906925e-10" {
		t.Errorf("regtest difficulty = %s", s)
	}
}
