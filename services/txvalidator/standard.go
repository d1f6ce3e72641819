package txvalidator

import (
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/rules"
)

// Standard-policy limits, as in Bitcoin Core's policy/policy.h.
const (
	// MaxStandardTxWeight is the largest standard transaction weight.
	MaxStandardTxWeight = 400000
	// MinStandardTxNonWitnessSize is the smallest standard stripped size.
	MinStandardTxNonWitnessSize = 65
	// MaxStandardScriptSigSize is the largest standard scriptSig.
	MaxStandardScriptSigSize = 1650
	// MaxStandardTxVersion is the highest standard version (TRUC is 3).
	MaxStandardTxVersion = 3
	// MaxOpReturnRelay is the largest standard OP_RETURN output script.
	MaxOpReturnRelay = 83
	// DustRelayFeePerKvB is the dust relay fee rate in sat/kvB.
	DustRelayFeePerKvB = 3000
	// maxScriptSize is the consensus script size limit; larger scripts are
	// unspendable and so never dust.
	maxScriptSize = 10000
)

// checkStandard applies Core's IsStandardTx and its tx-size-small check,
// naming the failure as Core's reject reason in the detail.
func checkStandard(tx *wire.MsgTx, weight int64) error {
	if tx.Version < 1 || tx.Version > MaxStandardTxVersion {
		return rules.New(rules.NonStandard, "version")
	}
	if weight > MaxStandardTxWeight {
		return rules.New(rules.NonStandard, "tx-size")
	}
	if tx.SerializeSizeStripped() < MinStandardTxNonWitnessSize {
		return rules.New(rules.NonStandard, "tx-size-small")
	}
	for _, in := range tx.TxIn {
		if len(in.SignatureScript) > MaxStandardScriptSigSize {
			return rules.New(rules.NonStandard, "scriptsig-size")
		}
		if !txscript.IsPushOnlyScript(in.SignatureScript) {
			return rules.New(rules.NonStandard, "scriptsig-not-pushonly")
		}
	}
	dataOuts := 0
	for _, out := range tx.TxOut {
		if isNullData(out.PkScript) {
			if len(out.PkScript) > MaxOpReturnRelay {
				return rules.New(rules.NonStandard, "scriptpubkey")
			}
			dataOuts++
			continue
		}
		if !standardOutputScript(out.PkScript) {
			return rules.New(rules.NonStandard, "scriptpubkey")
		}
		if IsDust(out) {
			return rules.New(rules.NonStandard, "dust")
		}
	}
	if dataOuts > 1 {
		return rules.New(rules.NonStandard, "multi-op-return")
	}
	return nil
}

// isNullData is Core's TxoutType::NULL_DATA: OP_RETURN then pushes only.
func isNullData(script []byte) bool {
	return len(script) >= 1 && script[0] == txscript.OP_RETURN && txscript.IsPushOnlyScript(script[1:])
}

// standardOutputScript reports whether an output script is of a standard
// class; bare multisig is standard up to 3 keys, as in Core.
func standardOutputScript(script []byte) bool {
	switch txscript.GetScriptClass(script) {
	case txscript.NonStandardTy:
		return false
	case txscript.MultiSigTy:
		keys, sigs, err := txscript.CalcMultiSigStats(script)
		return err == nil && keys >= 1 && keys <= 3 && sigs >= 1 && sigs <= keys
	default:
		return true
	}
}

// DustThreshold is the smallest non-dust value of out under Core's rule at
// DustRelayFeePerKvB: the fee to create and later spend the output.
func DustThreshold(out *wire.TxOut) int64 {
	if (len(out.PkScript) > 0 && out.PkScript[0] == txscript.OP_RETURN) || len(out.PkScript) > maxScriptSize {
		return 0
	}
	size := int64(out.SerializeSize())
	if txscript.IsWitnessProgram(out.PkScript) {
		size += 32 + 4 + 1 + 107/4 + 4
	} else {
		size += 32 + 4 + 1 + 107 + 4
	}
	return size * DustRelayFeePerKvB / 1000
}

// IsDust reports whether out is worth less than DustThreshold.
func IsDust(out *wire.TxOut) bool {
	return out.Value < DustThreshold(out)
}
