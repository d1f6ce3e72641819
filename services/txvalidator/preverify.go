package txvalidator

import (
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"

	"github.com/btcmesh/btcmesh/internal/libsecp"
)

// maxLegacyPreverifySize bounds the transactions whose legacy (P2PKH)
// signatures are pre-verified: a legacy sighash hashes the whole
// transaction, and the engine hashes it again, so for a very large one
// the second hash costs more than libsecp256k1 saves.
const maxLegacyPreverifySize = 50_000

// preverify checks input i's signature with libsecp256k1 when the input
// is a single-key ECDSA spend (P2WPKH, P2SH-wrapped P2WPKH or P2PKH) and
// records a valid one in the job's signature cache, where txscript's
// engine then finds it instead of verifying it again with btcd's slower
// pure-Go code.
//
// Nothing here decides validity: the engine still runs every script rule
// (encodings, witness shape, key hash, flags) and looks the signature up
// by the sighash it computes itself. An entry is only added for a
// signature that verifies, so it is the entry the engine would have added
// after its own verification; a sighash computed here for the wrong
// script code is an entry the engine never asks for.
func (e *engine) preverify(j *job, i int) {
	if !libsecp.Linked || j.sigCache == nil {
		return
	}
	out := j.prevouts[i].GetOutput()
	pkScript := out.GetPkScript()
	in := j.tx.TxIn[i]
	var sig, pub, hash []byte
	var err error
	switch {
	case isP2WPKH(pkScript) && len(in.SignatureScript) == 0 && len(in.Witness) == 2:
		sig, pub = in.Witness[0], in.Witness[1]
		hash, err = witnessSigHash(j, i, pkScript, sig, out.GetValue())
	case isP2SH(pkScript) && len(in.SignatureScript) == 23 && in.SignatureScript[0] == 22 &&
		isP2WPKH(in.SignatureScript[1:]) && len(in.Witness) == 2:
		sig, pub = in.Witness[0], in.Witness[1]
		hash, err = witnessSigHash(j, i, in.SignatureScript[1:], sig, out.GetValue())
	case isP2PKH(pkScript) && len(in.Witness) == 0 && j.tx.SerializeSizeStripped() <= maxLegacyPreverifySize:
		pushes, perr := txscript.PushedData(in.SignatureScript)
		if perr != nil || len(pushes) != 2 || len(pushes[0]) == 0 {
			return
		}
		sig, pub = pushes[0], pushes[1]
		hash, err = txscript.CalcSignatureHash(pkScript, txscript.SigHashType(sig[len(sig)-1]), j.tx, i)
	default:
		return
	}
	if err != nil || len(sig) == 0 {
		return
	}
	der := sig[:len(sig)-1]
	if !libsecp.VerifyECDSA(pub, der, hash) {
		return
	}
	var key chainhash.Hash
	copy(key[:], hash)
	j.sigCache.Add(key, der, pub)
	e.m.preverified.Inc()
}

// witnessSigHash is the BIP143 sighash of input i spending the P2WPKH
// program script with sig's sighash type.
func witnessSigHash(j *job, i int, program, sig []byte, amount int64) ([]byte, error) {
	if len(sig) == 0 {
		return nil, nil
	}
	return txscript.CalcWitnessSigHash(program, j.sigHashes, txscript.SigHashType(sig[len(sig)-1]), j.tx, i, amount)
}

// isP2WPKH reports OP_0 <20 bytes>.
func isP2WPKH(s []byte) bool { return len(s) == 22 && s[0] == txscript.OP_0 && s[1] == 20 }

// isP2SH reports OP_HASH160 <20 bytes> OP_EQUAL.
func isP2SH(s []byte) bool {
	return len(s) == 23 && s[0] == txscript.OP_HASH160 && s[1] == 20 && s[22] == txscript.OP_EQUAL
}

// isP2PKH reports OP_DUP OP_HASH160 <20 bytes> OP_EQUALVERIFY OP_CHECKSIG.
func isP2PKH(s []byte) bool {
	return len(s) == 25 && s[0] == txscript.OP_DUP && s[1] == txscript.OP_HASH160 && s[2] == 20 &&
		s[23] == txscript.OP_EQUALVERIFY && s[24] == txscript.OP_CHECKSIG
}
