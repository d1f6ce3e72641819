//go:build cgo

package libsecp

import gethsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"

// Linked is true when libsecp256k1 is compiled into this build.
const Linked = true

// Name is the verifier's name for logs and metrics.
const Name = "libsecp256k1"

func verify(pubKey []byte, compact *[64]byte, hash []byte) bool {
	return gethsecp.VerifySignature(pubKey, hash, compact[:])
}
