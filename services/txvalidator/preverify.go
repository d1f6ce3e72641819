package txvalidator

import (
	"bytes"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
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
// pure-Go code. A signature the cache already holds is not verified
// again.
//
// It reports whether the input is settled: a native P2WPKH spend whose
// signature verified and which meets every rule the engine could apply
// to it under flags (see settlesP2WPKH), so that running the engine
// could only answer valid. Any other input is left to the engine, which
// runs every script rule and looks the signature up by the sighash it
// computes itself. An entry is only added for a signature that verifies,
// so it is the entry the engine would have added after its own
// verification; a sighash computed here for the wrong script code is an
// entry the engine never asks for.
func (e *engine) preverify(j *job, i int, flags txscript.ScriptFlags) (settled bool) {
	if !libsecp.Linked || j.sigCache == nil {
		return false
	}
	out := j.prevouts[i].GetOutput()
	pkScript := out.GetPkScript()
	in := j.tx.TxIn[i]
	var sig, pub, hash []byte
	var err error
	native := false
	switch {
	case isP2WPKH(pkScript) && len(in.SignatureScript) == 0 && len(in.Witness) == 2:
		sig, pub = in.Witness[0], in.Witness[1]
		hash, err = witnessSigHash(j, i, pkScript, sig, out.GetValue())
		native = true
	case isP2SH(pkScript) && len(in.SignatureScript) == 23 && in.SignatureScript[0] == 22 &&
		isP2WPKH(in.SignatureScript[1:]) && len(in.Witness) == 2:
		sig, pub = in.Witness[0], in.Witness[1]
		hash, err = witnessSigHash(j, i, in.SignatureScript[1:], sig, out.GetValue())
	case isP2PKH(pkScript) && len(in.Witness) == 0 && j.tx.SerializeSizeStripped() <= maxLegacyPreverifySize:
		pushes, perr := txscript.PushedData(in.SignatureScript)
		if perr != nil || len(pushes) != 2 || len(pushes[0]) == 0 {
			return false
		}
		sig, pub = pushes[0], pushes[1]
		hash, err = txscript.CalcSignatureHash(pkScript, txscript.SigHashType(sig[len(sig)-1]), j.tx, i)
	default:
		return false
	}
	if err != nil || len(sig) == 0 {
		return false
	}
	der := sig[:len(sig)-1]
	var key chainhash.Hash
	copy(key[:], hash)
	if !j.sigCache.Exists(key, der, pub) {
		if !libsecp.VerifyECDSA(pub, der, hash) {
			return false
		}
		j.sigCache.Add(key, der, pub)
		e.m.preverified.Inc()
	}
	if native && settlesP2WPKH(flags, pkScript[2:], sig, pub) {
		e.m.inputsSettled.Inc()
		return true
	}
	return false
}

// witnessFlags are the flags under which an OP_0 <20 bytes> output is a
// P2WPKH program (Core asserts P2SH wherever witness is set; btcd's
// engine refuses witness without it).
const witnessFlags = txscript.ScriptVerifyWitness | txscript.ScriptBip16

// settlesP2WPKH reports whether a native P2WPKH input with witness [sig,
// pub], whose signature has verified over the BIP143 sighash of sig's
// hash type, is valid under flags and under any stricter set: the
// program is a witness program (flags hold witnessFlags), the key is
// compressed (WITNESS_PUBKEYTYPE, STRICTENC) and hashes to program
// (OP_EQUALVERIFY), the hash type is defined (STRICTENC), the signature
// is strict DER (DERSIG, BIP66) with a low s (LOW_S). The engine's
// script for the program is then DUP HASH160 <program> EQUALVERIFY
// CHECKSIG on a stack of those two items, which leaves exactly one true.
func settlesP2WPKH(flags txscript.ScriptFlags, program, sig, pub []byte) bool {
	if flags&witnessFlags != witnessFlags {
		return false
	}
	if len(pub) != 33 || (pub[0] != 0x02 && pub[0] != 0x03) {
		return false
	}
	hashType := txscript.SigHashType(sig[len(sig)-1]) &^ txscript.SigHashAnyOneCanPay
	if hashType < txscript.SigHashAll || hashType > txscript.SigHashSingle {
		return false
	}
	parsed, err := ecdsa.ParseDERSignature(sig[:len(sig)-1])
	if err != nil {
		return false
	}
	if s := parsed.S(); s.IsOverHalfOrder() {
		return false
	}
	return bytes.Equal(address.Hash160(pub), program)
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
