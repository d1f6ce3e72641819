package ctl

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/address/v2/bech32"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/txscript/v2"
)

// opNames are Bitcoin Core's GetOpName spellings for opcodes that are not
// data pushes or small integers.
var opNames = map[byte]string{
	0x61: "OP_NOP", 0x62: "OP_VER", 0x63: "OP_IF", 0x64: "OP_NOTIF", 0x65: "OP_VERIF",
	0x66: "OP_VERNOTIF", 0x67: "OP_ELSE", 0x68: "OP_ENDIF", 0x69: "OP_VERIFY", 0x6a: "OP_RETURN",
	0x6b: "OP_TOALTSTACK", 0x6c: "OP_FROMALTSTACK", 0x6d: "OP_2DROP", 0x6e: "OP_2DUP",
	0x6f: "OP_3DUP", 0x70: "OP_2OVER", 0x71: "OP_2ROT", 0x72: "OP_2SWAP", 0x73: "OP_IFDUP",
	0x74: "OP_DEPTH", 0x75: "OP_DROP", 0x76: "OP_DUP", 0x77: "OP_NIP", 0x78: "OP_OVER",
	0x79: "OP_PICK", 0x7a: "OP_ROLL", 0x7b: "OP_ROT", 0x7c: "OP_SWAP", 0x7d: "OP_TUCK",
	0x7e: "OP_CAT", 0x7f: "OP_SUBSTR", 0x80: "OP_LEFT", 0x81: "OP_RIGHT", 0x82: "OP_SIZE",
	0x83: "OP_INVERT", 0x84: "OP_AND", 0x85: "OP_OR", 0x86: "OP_XOR", 0x87: "OP_EQUAL",
	0x88: "OP_EQUALVERIFY", 0x89: "OP_RESERVED1", 0x8a: "OP_RESERVED2", 0x8b: "OP_1ADD",
	0x8c: "OP_1SUB", 0x8d: "OP_2MUL", 0x8e: "OP_2DIV", 0x8f: "OP_NEGATE", 0x90: "OP_ABS",
	0x91: "OP_NOT", 0x92: "OP_0NOTEQUAL", 0x93: "OP_ADD", 0x94: "OP_SUB", 0x95: "OP_MUL",
	0x96: "OP_DIV", 0x97: "OP_MOD", 0x98: "OP_LSHIFT", 0x99: "OP_RSHIFT", 0x9a: "OP_BOOLAND",
	0x9b: "OP_BOOLOR", 0x9c: "OP_NUMEQUAL", 0x9d: "OP_NUMEQUALVERIFY", 0x9e: "OP_NUMNOTEQUAL",
	0x9f: "OP_LESSTHAN", 0xa0: "OP_GREATERTHAN", 0xa1: "OP_LESSTHANOREQUAL",
	0xa2: "OP_GREATERTHANOREQUAL", 0xa3: "OP_MIN", 0xa4: "OP_MAX", 0xa5: "OP_WITHIN",
	0xa6: "OP_RIPEMD160", 0xa7: "OP_SHA1", 0xa8: "OP_SHA256", 0xa9: "OP_HASH160",
	0xaa: "OP_HASH256", 0xab: "OP_CODESEPARATOR", 0xac: "OP_CHECKSIG", 0xad: "OP_CHECKSIGVERIFY",
	0xae: "OP_CHECKMULTISIG", 0xaf: "OP_CHECKMULTISIGVERIFY", 0xb0: "OP_NOP1",
	0xb1: "OP_CHECKLOCKTIMEVERIFY", 0xb2: "OP_CHECKSEQUENCEVERIFY", 0xb3: "OP_NOP4",
	0xb4: "OP_NOP5", 0xb5: "OP_NOP6", 0xb6: "OP_NOP7", 0xb7: "OP_NOP8", 0xb8: "OP_NOP9",
	0xb9: "OP_NOP10", 0xba: "OP_CHECKSIGADD", 0xff: "OP_INVALIDOPCODE", 0x50: "OP_RESERVED",
}

// opName is Core's GetOpName.
func opName(op byte) string {
	switch {
	case op == 0x00:
		return "0"
	case op == 0x4f:
		return "-1"
	case op >= 0x51 && op <= 0x60:
		return fmt.Sprint(int(op) - 0x50)
	}
	if n, ok := opNames[op]; ok {
		return n
	}
	return "OP_UNKNOWN"
}

// scriptNum decodes up to four bytes as a little-endian sign-magnitude
// number (Core's CScriptNum without the minimal-encoding check).
func scriptNum(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	var v int64
	for i, c := range b {
		v |= int64(c) << (8 * i)
	}
	if b[len(b)-1]&0x80 != 0 {
		return -(v & ^(int64(0x80) << (8 * (len(b) - 1))))
	}
	return v
}

// sigHashNames are the sighash suffixes Core decodes in scriptSig asm.
var sigHashNames = map[byte]string{
	0x01: "ALL", 0x81: "ALL|ANYONECANPAY", 0x02: "NONE", 0x82: "NONE|ANYONECANPAY",
	0x03: "SINGLE", 0x83: "SINGLE|ANYONECANPAY",
}

// scriptAsm is Core's ScriptToAsmStr: pushes of up to four bytes print as
// numbers, longer pushes as hex, and in a scriptSig (decodeSigs) data that
// is a strictly DER-encoded signature gets its sighash type as "[ALL]".
func scriptAsm(script []byte, decodeSigs bool) string {
	var parts []string
	unspendable := (len(script) > 0 && script[0] == txscript.OP_RETURN) || len(script) > txscript.MaxScriptSize
	tok := txscript.MakeScriptTokenizer(0, script)
	for tok.Next() {
		op := tok.Opcode()
		if op > txscript.OP_PUSHDATA4 {
			parts = append(parts, opName(op))
			continue
		}
		data := tok.Data()
		if len(data) <= 4 {
			parts = append(parts, fmt.Sprint(scriptNum(data)))
			continue
		}
		if decodeSigs && !unspendable && isStrictSignature(data) {
			if name, ok := sigHashNames[data[len(data)-1]]; ok {
				parts = append(parts, hex.EncodeToString(data[:len(data)-1])+"["+name+"]")
				continue
			}
		}
		parts = append(parts, hex.EncodeToString(data))
	}
	if tok.Err() != nil {
		parts = append(parts, "[error]")
	}
	return strings.Join(parts, " ")
}

// isStrictSignature is Core's CheckSignatureEncoding under STRICTENC: a
// valid DER signature followed by a defined sighash type.
func isStrictSignature(sig []byte) bool {
	if !isValidDER(sig) {
		return false
	}
	ht := sig[len(sig)-1] &^ 0x80
	return ht >= 0x01 && ht <= 0x03
}

// isValidDER is Core's IsValidSignatureEncoding (BIP66), sighash byte
// included.
func isValidDER(sig []byte) bool {
	n := len(sig)
	if n < 9 || n > 73 || sig[0] != 0x30 || int(sig[1]) != n-3 {
		return false
	}
	lenR := int(sig[3])
	if 5+lenR >= n {
		return false
	}
	lenS := int(sig[5+lenR])
	if lenR+lenS+7 != n {
		return false
	}
	if sig[2] != 0x02 || lenR == 0 || sig[4]&0x80 != 0 {
		return false
	}
	if lenR > 1 && sig[4] == 0x00 && sig[5]&0x80 == 0 {
		return false
	}
	if sig[lenR+4] != 0x02 || lenS == 0 || sig[lenR+6]&0x80 != 0 {
		return false
	}
	if lenS > 1 && sig[lenR+6] == 0x00 && sig[lenR+7]&0x80 == 0 {
		return false
	}
	return true
}

// scriptPubKeyJSON is Core's ScriptToUniv with hex and address:
// {asm, desc, hex, address?, type}.
func scriptPubKeyJSON(pkScript []byte, params *chaincfg.Params) object {
	class := scriptClass(pkScript)
	addr := scriptAddress(pkScript, class, params)
	var o object
	o.add("asm", scriptAsm(pkScript, false))
	o.add("desc", inferDescriptor(pkScript, class, addr))
	o.add("hex", hex.EncodeToString(pkScript))
	if addr != "" {
		o.add("address", addr)
	}
	o.add("type", class.String())
	return o
}

// scriptClass is btcd's classification, except that, as Core's Solver,
// any OP_RETURN followed only by pushes is nulldata whatever its size.
func scriptClass(pkScript []byte) txscript.ScriptClass {
	if len(pkScript) > 0 && pkScript[0] == txscript.OP_RETURN {
		tok := txscript.MakeScriptTokenizer(0, pkScript[1:])
		for tok.Next() {
			if tok.Opcode() > txscript.OP_16 {
				return txscript.NonStandardTy
			}
		}
		if tok.Err() == nil {
			return txscript.NullDataTy
		}
		return txscript.NonStandardTy
	}
	return txscript.GetScriptClass(pkScript)
}

// scriptAddress returns the address Core's ExtractDestination gives for a
// script: none for bare public keys, multisig, OP_RETURN and nonstandard
// scripts.
func scriptAddress(pkScript []byte, class txscript.ScriptClass, params *chaincfg.Params) string {
	switch class {
	case txscript.PubKeyTy, txscript.MultiSigTy, txscript.NullDataTy, txscript.NonStandardTy:
		return ""
	}
	if class == txscript.WitnessUnknownTy || class == txscript.PayToAnchorTy {
		ver, prog, err := txscript.ExtractWitnessProgramInfo(pkScript)
		if err != nil {
			return ""
		}
		return segwitAddress(params.Bech32HRPSegwit, byte(ver), prog)
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(pkScript, params)
	if err != nil || len(addrs) != 1 {
		return ""
	}
	return addrs[0].EncodeAddress()
}

// segwitAddress encodes any witness program (bech32 for version 0,
// bech32m otherwise), as Core does for unknown witness versions.
func segwitAddress(hrp string, version byte, program []byte) string {
	conv, err := bech32.ConvertBits(program, 8, 5, true)
	if err != nil {
		return ""
	}
	data := append([]byte{version}, conv...)
	var s string
	if version == 0 {
		s, err = bech32.Encode(hrp, data)
	} else {
		s, err = bech32.EncodeM(hrp, data)
	}
	if err != nil {
		return ""
	}
	return s
}

// inferDescriptor is Core's InferDescriptor without a signing provider:
// pk() for bare keys, multi() for bare multisig, rawtr() for taproot
// outputs, addr() for other outputs with an address and raw() otherwise,
// with the descriptor checksum.
func inferDescriptor(pkScript []byte, class txscript.ScriptClass, addr string) string {
	switch class {
	case txscript.PubKeyTy:
		pushes, err := txscript.PushedData(pkScript)
		if err == nil && len(pushes) == 1 && validPubKey(pushes[0]) {
			return withChecksum("pk(" + hex.EncodeToString(pushes[0]) + ")")
		}
	case txscript.MultiSigTy:
		if d, ok := multiDescriptor(pkScript); ok {
			return withChecksum(d)
		}
	case txscript.WitnessV1TaprootTy:
		_, prog, err := txscript.ExtractWitnessProgramInfo(pkScript)
		if err == nil {
			if _, err := btcec.ParsePubKey(append([]byte{0x02}, prog...)); err == nil {
				return withChecksum("rawtr(" + hex.EncodeToString(prog) + ")")
			}
		}
	}
	if addr != "" {
		return withChecksum("addr(" + addr + ")")
	}
	return withChecksum("raw(" + hex.EncodeToString(pkScript) + ")")
}

// multiDescriptor renders a bare multisig script as multi(k,keys...).
func multiDescriptor(pkScript []byte) (string, bool) {
	tok := txscript.MakeScriptTokenizer(0, pkScript)
	var items []string
	var keys int
	first := true
	for tok.Next() {
		op := tok.Opcode()
		switch {
		case first && op >= txscript.OP_1 && op <= txscript.OP_16:
			items = append(items, fmt.Sprint(int(op)-0x50))
		case first:
			return "", false
		case op <= txscript.OP_PUSHDATA4 && len(tok.Data()) > 0:
			if !validPubKey(tok.Data()) {
				return "", false
			}
			items = append(items, hex.EncodeToString(tok.Data()))
			keys++
		}
		first = false
	}
	if tok.Err() != nil || keys == 0 {
		return "", false
	}
	return "multi(" + strings.Join(items, ",") + ")", true
}

// validPubKey reports whether b is a valid compressed or uncompressed key.
func validPubKey(b []byte) bool {
	if len(b) != 33 && len(b) != 65 {
		return false
	}
	_, err := btcec.ParsePubKey(b)
	return err == nil
}

// Descriptor checksum (BIP380).
const (
	descInputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	descChecksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

// descPolymod is BIP380's checksum polynomial step.
func descPolymod(c uint64, val int) uint64 {
	c0 := c >> 35
	c = ((c & 0x7ffffffff) << 5) ^ uint64(val)
	gens := [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}
	for i, g := range gens {
		if c0&(1<<i) != 0 {
			c ^= g
		}
	}
	return c
}

// withChecksum appends "#" and the descriptor's eight-character checksum.
func withChecksum(desc string) string {
	c := uint64(1)
	cls, clsCount := 0, 0
	for _, ch := range desc {
		pos := strings.IndexRune(descInputCharset, ch)
		if pos < 0 {
			return desc
		}
		c = descPolymod(c, pos&31)
		cls = cls*3 + (pos >> 5)
		clsCount++
		if clsCount == 3 {
			c = descPolymod(c, cls)
			cls, clsCount = 0, 0
		}
	}
	if clsCount > 0 {
		c = descPolymod(c, cls)
	}
	for range 8 {
		c = descPolymod(c, 0)
	}
	c ^= 1
	var sum [8]byte
	for j := range 8 {
		sum[j] = descChecksumCharset[(c>>(5*(7-j)))&31]
	}
	return desc + "#" + string(sum[:])
}
