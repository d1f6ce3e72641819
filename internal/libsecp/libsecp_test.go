package libsecp

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// TestAgreesWithBtcec checks VerifyECDSA against btcd's verifier on valid
// signatures (low and high s, compressed and uncompressed keys) and on
// every way of breaking them: another hash, another key, a flipped bit in
// r or s, and encodings it must not judge.
func TestAgreesWithBtcec(t *testing.T) {
	checked := 0
	for i := range 200 {
		var seed [32]byte
		binary.BigEndian.PutUint64(seed[24:], uint64(i+1))
		seed[0] = 0x42
		priv, _ := btcec.PrivKeyFromBytes(seed[:])
		hash := sha256.Sum256(seed[:])
		sig := ecdsa.Sign(priv, hash[:])
		keys := [][]byte{priv.PubKey().SerializeCompressed(), priv.PubKey().SerializeUncompressed()}
		r, s := sig.R(), sig.S()
		var negS btcec.ModNScalar
		negS.NegateVal(&s)
		high := ecdsa.NewSignature(&r, &negS) // the same signature with s > n/2
		other, _ := btcec.PrivKeyFromBytes(hash[:])
		otherHash := sha256.Sum256(hash[:])
		var sPlus btcec.ModNScalar
		sPlus.Set(&s).Add(new(btcec.ModNScalar).SetInt(1))
		tampered := ecdsa.NewSignature(&r, &sPlus)

		cases := []struct {
			name string
			key  []byte
			der  []byte
			hash []byte
		}{
			{"valid", keys[i%2], sig.Serialize(), hash[:]},
			{"high s", keys[0], high.Serialize(), hash[:]},
			{"other hash", keys[0], sig.Serialize(), otherHash[:]},
			{"other key", other.PubKey().SerializeCompressed(), sig.Serialize(), hash[:]},
			{"tampered s", keys[1], tampered.Serialize(), hash[:]},
		}
		for _, c := range cases {
			pk, err := btcec.ParsePubKey(c.key)
			if err != nil {
				t.Fatal(err)
			}
			// btcd's verifier on the same parsed signature is the reference.
			parsed, err := ecdsa.ParseDERSignature(c.der)
			if err != nil {
				t.Fatal(err)
			}
			want := parsed.Verify(c.hash, pk) && Linked
			if got := VerifyECDSA(c.key, c.der, c.hash); got != want {
				t.Fatalf("sig %d %s: libsecp %v, btcec %v (linked %v)", i, c.name, got, want, Linked)
			}
			checked++
		}
	}
	t.Logf("%d signatures compared with btcec (%s)", checked, Name)
}

// TestRefusesWhatItDoesNotJudge checks that encodings outside its remit
// answer false, so that the caller verifies them itself.
func TestRefusesWhatItDoesNotJudge(t *testing.T) {
	var seed [32]byte
	seed[31] = 7
	priv, _ := btcec.PrivKeyFromBytes(seed[:])
	hash := sha256.Sum256([]byte("m"))
	sig := ecdsa.Sign(priv, hash[:]).Serialize()
	key := priv.PubKey().SerializeCompressed()
	if Linked && !VerifyECDSA(key, sig, hash[:]) {
		t.Fatal("the valid signature itself does not verify")
	}
	hybrid := priv.PubKey().SerializeUncompressed()
	hybrid[0] = 0x06 | hybrid[64]&1
	padded := append([]byte{}, sig...)
	padded[1]++
	padded = append(padded, 0) // BER-style trailing byte: not strict DER
	for name, c := range map[string][3][]byte{
		"short hash":     {key, sig, hash[:31]},
		"hybrid key":     {hybrid, sig, hash[:]},
		"no key":         {nil, sig, hash[:]},
		"not strict DER": {key, padded, hash[:]},
		"empty sig":      {key, nil, hash[:]},
	} {
		if VerifyECDSA(c[0], c[1], c[2]) {
			t.Errorf("%s: answered valid", name)
		}
	}
}
