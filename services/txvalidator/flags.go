package txvalidator

import (
	"fmt"

	"github.com/btcsuite/btcd/txscript/v2"

	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"
)

// flagTable pairs every proto ScriptFlag with btcd's flag, in enum order.
var flagTable = []struct {
	proto txvalidatorv1.ScriptFlag
	btcd  txscript.ScriptFlags
}{
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_P2SH, txscript.ScriptBip16},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_STRICTENC, txscript.ScriptVerifyStrictEncoding},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DERSIG, txscript.ScriptVerifyDERSignatures},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_LOW_S, txscript.ScriptVerifyLowS},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_NULLDUMMY, txscript.ScriptStrictMultiSig},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_SIGPUSHONLY, txscript.ScriptVerifySigPushOnly},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_MINIMALDATA, txscript.ScriptVerifyMinimalData},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DISCOURAGE_UPGRADABLE_NOPS, txscript.ScriptDiscourageUpgradableNops},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_CLEANSTACK, txscript.ScriptVerifyCleanStack},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_CHECKLOCKTIMEVERIFY, txscript.ScriptVerifyCheckLockTimeVerify},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_CHECKSEQUENCEVERIFY, txscript.ScriptVerifyCheckSequenceVerify},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_WITNESS, txscript.ScriptVerifyWitness},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM, txscript.ScriptVerifyDiscourageUpgradeableWitnessProgram},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_MINIMALIF, txscript.ScriptVerifyMinimalIf},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_NULLFAIL, txscript.ScriptVerifyNullFail},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_WITNESS_PUBKEYTYPE, txscript.ScriptVerifyWitnessPubKeyType},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_CONST_SCRIPTCODE, txscript.ScriptVerifyConstScriptCode},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_TAPROOT, txscript.ScriptVerifyTaproot},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DISCOURAGE_UPGRADABLE_TAPROOT_VERSION, txscript.ScriptVerifyDiscourageUpgradeableTaprootVersion},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DISCOURAGE_OP_SUCCESS, txscript.ScriptVerifyDiscourageOpSuccess},
	{txvalidatorv1.ScriptFlag_SCRIPT_FLAG_DISCOURAGE_UPGRADABLE_PUBKEY_TYPE, txscript.ScriptVerifyDiscourageUpgradeablePubkeyType},
}

// FlagsFromProto converts proto script flags to btcd's bitmask. Duplicates
// are harmless and SCRIPT_FLAG_UNSPECIFIED adds nothing (so that
// [UNSPECIFIED] asks for no flags at all, where an empty list means the
// network's consensus flags); an unknown value is an error.
func FlagsFromProto(flags []txvalidatorv1.ScriptFlag) (txscript.ScriptFlags, error) {
	var out txscript.ScriptFlags
	for _, f := range flags {
		if f == txvalidatorv1.ScriptFlag_SCRIPT_FLAG_UNSPECIFIED {
			continue
		}
		found := false
		for _, e := range flagTable {
			if e.proto == f {
				out |= e.btcd
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown script flag %v", f)
		}
	}
	return out, nil
}

// FlagsToProto converts btcd's bitmask to proto script flags in enum
// order. No flags at all become [SCRIPT_FLAG_UNSPECIFIED], because an empty
// list would ask for the network's consensus flags. Bits without a proto
// counterpart are an error.
func FlagsToProto(flags txscript.ScriptFlags) ([]txvalidatorv1.ScriptFlag, error) {
	out := make([]txvalidatorv1.ScriptFlag, 0, len(flagTable))
	var known txscript.ScriptFlags
	for _, e := range flagTable {
		known |= e.btcd
		if flags&e.btcd != 0 {
			out = append(out, e.proto)
		}
	}
	if rest := flags &^ known; rest != 0 {
		return nil, fmt.Errorf("script flags %#x have no proto value", uint32(rest))
	}
	if len(out) == 0 {
		out = append(out, txvalidatorv1.ScriptFlag_SCRIPT_FLAG_UNSPECIFIED)
	}
	return out, nil
}
