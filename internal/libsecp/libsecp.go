// Package libsecp verifies ECDSA signatures with libsecp256k1, the C
// library Bitcoin Core uses, about three times faster than btcd's pure-Go
// verifier on the same core. The library is compiled from the copy
// go-ethereum vendors (github.com/ethereum/go-ethereum/crypto/secp256k1)
// through cgo; a build without cgo links none, and Linked is false.
//
// The verdict is meant for a signature cache in front of txscript's
// engine (see services/txvalidator): true is only ever answered for a
// mathematically valid signature, so a cache entry recorded from it is
// one the engine's own verification would have recorded; false may also
// mean "not checked here", and the caller then verifies as it would
// have.
package libsecp

import (
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// VerifyECDSA reports whether derSig (strict DER, without a sighash type
// byte) is a valid ECDSA signature of hash by pubKey (a 33-byte
// compressed or 65-byte uncompressed SEC encoding). It answers false for
// an invalid signature and for anything it does not check: no
// libsecp256k1 in this build, a hash that is not 32 bytes, another key
// encoding, a signature that is not strict DER.
func VerifyECDSA(pubKey, derSig, hash []byte) bool {
	if !Linked || len(hash) != 32 {
		return false
	}
	switch {
	case len(pubKey) == 33 && (pubKey[0] == 0x02 || pubKey[0] == 0x03):
	case len(pubKey) == 65 && pubKey[0] == 0x04:
	default:
		return false
	}
	sig, err := ecdsa.ParseDERSignature(derSig)
	if err != nil {
		return false
	}
	r, s := sig.R(), sig.S()
	// libsecp256k1 accepts only the lower of s and n-s; the two are
	// equally valid (R and -R share their x), and consensus takes both.
	if s.IsOverHalfOrder() {
		s.Negate()
	}
	var compact [64]byte
	r.PutBytesUnchecked(compact[:32])
	s.PutBytesUnchecked(compact[32:])
	return verify(pubKey, &compact, hash)
}
