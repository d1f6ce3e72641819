package packed

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

func TestOutPointsRoundTrip(t *testing.T) {
	ops := []wire.OutPoint{{Hash: chainhash.Hash{1, 2}, Index: 0}, {Hash: chainhash.Hash{31: 9}, Index: 0xfffffffe}}
	var b []byte
	for _, op := range ops {
		b = AppendOutPoint(b, op)
	}
	if len(b) != 2*OutPointLen || b[OutPointLen+32] != 0xfe {
		t.Fatalf("packed %x", b)
	}
	got := make([]wire.OutPoint, 2)
	if err := ReadOutPoints(got, b); err != nil || got[0] != ops[0] || got[1] != ops[1] {
		t.Fatalf("read %v %v", got, err)
	}
	if err := ReadOutPoints(got, b[:OutPointLen+1]); err == nil {
		t.Fatal("a torn outpoint must not read")
	}
}

func TestRecords(t *testing.T) {
	long := bytes.Repeat([]byte{5}, 300) // a two-byte length
	b := AppendRecord(AppendRecord(AppendRecord(nil, []byte{1, 2}), nil), long)
	v1, rest, err := NextRecord(b)
	if err != nil || !bytes.Equal(v1, []byte{1, 2}) {
		t.Fatalf("first %x %v", v1, err)
	}
	v2, rest, err := NextRecord(rest)
	if err != nil || len(v2) != 0 {
		t.Fatalf("second %x %v", v2, err)
	}
	v3, rest, err := NextRecord(rest)
	if err != nil || !bytes.Equal(v3, long) || len(rest) != 0 {
		t.Fatalf("third %d bytes, rest %d, %v", len(v3), len(rest), err)
	}
	if _, _, err := NextRecord(b[:len(b)-1][len(b)-302:]); err == nil {
		t.Fatal("a truncated record must not read")
	}
	if _, _, err := NextRecord(nil); err == nil {
		t.Fatal("no record in nothing")
	}
}

func TestOutputs(t *testing.T) {
	outs := []*wire.TxOut{wire.NewTxOut(-1, nil), wire.NewTxOut(21e14, bytes.Repeat([]byte{0x51}, 300))}
	var b []byte
	for _, o := range outs {
		b = AppendOutput(b, o)
	}
	rest := b
	for i, want := range outs {
		var got wire.TxOut
		var err error
		if rest, err = NextOutput(rest, &got); err != nil || got.Value != want.Value || !bytes.Equal(got.PkScript, want.PkScript) {
			t.Fatalf("output %d: %v %v", i, got, err)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
	var o wire.TxOut
	if _, err := NextOutput(nil, &o); err == nil {
		t.Fatal("nothing is not an output")
	}
	if _, err := NextOutput(b[:5], &o); err == nil {
		t.Fatal("a torn amount must not read")
	}
	if _, err := NextOutput(b[9:len(b)-1], &o); err == nil { // the second, cut short
		t.Fatal("a torn script must not read")
	}
}
