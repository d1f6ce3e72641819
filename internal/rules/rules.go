// Package rules names the consensus and policy rules a block or transaction
// can break, in Bitcoin Core's reject-reason vocabulary, and maps them to
// gRPC status codes in one place.
//
// A RuleError carries a Kind (the rule's name) and a detail. errors.Is
// matches a RuleError against its Kind, so callers write
// errors.Is(err, rules.MissingInputs).
package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/txscript/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is the name of a rule, as Bitcoin Core reports it.
type Kind string

// Error makes a Kind usable as an errors.Is target.
func (k Kind) Error() string { return string(k) }

// Rule names used across services.
const (
	// Malformed: the bytes do not decode.
	Malformed Kind = "decode-failed"
	// Duplicate: already known.
	Duplicate Kind = "duplicate"
	// DuplicateInvalid: already known to be invalid.
	DuplicateInvalid Kind = "duplicate-invalid"
	// MissingInputs: an input spends an output that does not exist or is spent.
	MissingInputs Kind = "bad-txns-inputs-missingorspent"
	// MempoolConflict: an input is already spent by a mempool transaction.
	MempoolConflict Kind = "txn-mempool-conflict"
	// AlreadyInMempool: the transaction is already in the mempool.
	AlreadyInMempool Kind = "txn-already-in-mempool"
	// AlreadyKnown: the transaction is already confirmed.
	AlreadyKnown Kind = "txn-already-known"
	// PrematureCoinbaseSpend: a coinbase output spent before 100 confirmations.
	PrematureCoinbaseSpend Kind = "bad-txns-premature-spend-of-coinbase"
	// ScriptFailed: a script did not verify under the consensus flags.
	ScriptFailed Kind = "mandatory-script-verify-flag-failed"
	// PolicyScriptFailed: a script failed only a standard-policy flag.
	PolicyScriptFailed Kind = "non-mandatory-script-verify-flag"
	// NonFinal: the transaction's locktime is not reached.
	NonFinal Kind = "bad-txns-nonfinal"
	// NonBIP68Final: a relative lock (BIP68) is not reached.
	NonBIP68Final Kind = "non-BIP68-final"
	// InBelowOut: outputs spend more than the inputs hold.
	InBelowOut Kind = "bad-txns-in-belowout"
	// MinRelayFee: the fee is below the minimum relay fee.
	MinRelayFee Kind = "min relay fee not met"
	// MaxFeeExceeded: the fee rate is above the caller's maximum.
	MaxFeeExceeded Kind = "max-fee-exceeded"
	// NonStandard: the transaction breaks a standardness policy.
	NonStandard Kind = "non-standard"
	// PrevBlockNotFound: a block's parent is unknown.
	PrevBlockNotFound Kind = "prev-blk-not-found"
	// BadPrevBlock: a block's ancestor is invalid.
	BadPrevBlock Kind = "bad-prevblk"
	// InconclusiveSideChain: stored on a side chain, not validated further.
	InconclusiveSideChain Kind = "inconclusive"
	// BadCoinbaseAmount: the coinbase claims more than subsidy plus fees.
	BadCoinbaseAmount Kind = "bad-cb-amount"
	// BadBlockSigops: the block's sigop cost is over the limit.
	BadBlockSigops Kind = "bad-blk-sigops"
	// BIP30: a transaction would overwrite an unspent one.
	BIP30 Kind = "bad-txns-BIP30"
)

// btcdKinds maps btcd's blockchain error codes to Core's names.
var btcdKinds = map[blockchain.ErrorCode]Kind{
	blockchain.ErrDuplicateBlock:            Duplicate,
	blockchain.ErrBlockTooBig:               "bad-blk-length",
	blockchain.ErrBlockWeightTooHigh:        "bad-blk-weight",
	blockchain.ErrBlockVersionTooOld:        "bad-version",
	blockchain.ErrInvalidTime:               "time-invalid",
	blockchain.ErrTimeTooOld:                "time-too-old",
	blockchain.ErrTimeTooNew:                "time-too-new",
	blockchain.ErrDifficultyTooLow:          "bad-diffbits",
	blockchain.ErrUnexpectedDifficulty:      "bad-diffbits",
	blockchain.ErrHighHash:                  "high-hash",
	blockchain.ErrBadMerkleRoot:             "bad-txnmrklroot",
	blockchain.ErrBadCheckpoint:             "checkpoint-mismatch",
	blockchain.ErrForkTooOld:                "bad-fork-prior-to-checkpoint",
	blockchain.ErrCheckpointTimeTooOld:      "time-too-old",
	blockchain.ErrNoTransactions:            "bad-blk-length",
	blockchain.ErrNoTxInputs:                "bad-txns-vin-empty",
	blockchain.ErrNoTxOutputs:               "bad-txns-vout-empty",
	blockchain.ErrTxTooBig:                  "bad-txns-oversize",
	blockchain.ErrBadTxOutValue:             "bad-txns-vout-toolarge",
	blockchain.ErrDuplicateTxInputs:         "bad-txns-inputs-duplicate",
	blockchain.ErrBadTxInput:                "bad-txns-prevout-null",
	blockchain.ErrMissingTxOut:              MissingInputs,
	blockchain.ErrUnfinalizedTx:             NonFinal,
	blockchain.ErrDuplicateTx:               "bad-txns-duplicate",
	blockchain.ErrOverwriteTx:               BIP30,
	blockchain.ErrImmatureSpend:             PrematureCoinbaseSpend,
	blockchain.ErrSpendTooHigh:              InBelowOut,
	blockchain.ErrBadFees:                   "bad-txns-fee-outofrange",
	blockchain.ErrTooManySigOps:             BadBlockSigops,
	blockchain.ErrFirstTxNotCoinbase:        "bad-cb-missing",
	blockchain.ErrMultipleCoinbases:         "bad-cb-multiple",
	blockchain.ErrBadCoinbaseScriptLen:      "bad-cb-length",
	blockchain.ErrBadCoinbaseValue:          BadCoinbaseAmount,
	blockchain.ErrMissingCoinbaseHeight:     "bad-cb-height",
	blockchain.ErrBadCoinbaseHeight:         "bad-cb-height",
	blockchain.ErrScriptMalformed:           ScriptFailed,
	blockchain.ErrScriptValidation:          ScriptFailed,
	blockchain.ErrUnexpectedWitness:         "unexpected-witness",
	blockchain.ErrInvalidWitnessCommitment:  "bad-witness-nonce-size",
	blockchain.ErrWitnessCommitmentMismatch: "bad-witness-merkle-match",
	blockchain.ErrPreviousBlockUnknown:      PrevBlockNotFound,
	blockchain.ErrInvalidAncestorBlock:      BadPrevBlock,
	blockchain.ErrPrevBlockNotBest:          "prev-blk-not-best",
	blockchain.ErrTimewarpAttack:            "time-timewarp-attack",
	blockchain.ErrKnownInvalidBlock:         DuplicateInvalid,
}

// RuleError says which rule was broken and how.
type RuleError struct {
	// Kind is the rule's name.
	Kind Kind
	// Detail explains the failure.
	Detail string
}

// Error renders "kind: detail" (or just the kind).
func (e *RuleError) Error() string {
	if e.Detail == "" {
		return string(e.Kind)
	}
	return string(e.Kind) + ": " + e.Detail
}

// Is lets errors.Is match a RuleError against its Kind.
func (e *RuleError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// New returns a RuleError of kind with a formatted detail.
func New(kind Kind, format string, args ...any) error {
	return &RuleError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// KindOf returns the rule an error broke, translating btcd's blockchain and
// txscript errors, and false when err is not a rule violation.
func KindOf(err error) (Kind, bool) {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Kind, true
	}
	var k Kind
	if errors.As(err, &k) {
		return k, true
	}
	var be blockchain.RuleError
	if errors.As(err, &be) {
		if k, ok := btcdKinds[be.ErrorCode]; ok {
			return k, true
		}
		return Kind(strings.ToLower(be.ErrorCode.String())), true
	}
	var se txscript.Error
	if errors.As(err, &se) {
		return ScriptFailed, true
	}
	return "", false
}

// FromBtcd converts btcd's rule errors into a RuleError with Core's name,
// keeping btcd's description as the detail; other errors pass unchanged.
func FromBtcd(err error) error {
	if err == nil {
		return nil
	}
	var re *RuleError
	if errors.As(err, &re) {
		return err
	}
	if k, ok := KindOf(err); ok {
		return &RuleError{Kind: k, Detail: err.Error()}
	}
	return err
}

// errorDomain tags btcmesh's ErrorInfo details.
const errorDomain = "btcmesh"

// ToStatus maps an error to a gRPC status error: rule violations become
// FailedPrecondition (Malformed becomes InvalidArgument) carrying the rule
// in an ErrorInfo detail; errors that already are statuses pass through;
// anything else is Internal.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	k, ok := KindOf(err)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	code := codes.FailedPrecondition
	if k == Malformed {
		code = codes.InvalidArgument
	}
	st := status.New(code, err.Error())
	if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: string(k), Domain: errorDomain}); derr == nil {
		st = withInfo
	}
	return st.Err()
}

// FromStatus recovers a RuleError from a gRPC status made by ToStatus.
func FromStatus(err error) (*RuleError, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == errorDomain {
			detail := strings.TrimPrefix(st.Message(), info.Reason)
			detail = strings.TrimPrefix(detail, ": ")
			return &RuleError{Kind: Kind(info.Reason), Detail: detail}, true
		}
	}
	return nil, false
}

// InvalidArgument is a gRPC InvalidArgument status with a formatted reason,
// for requests whose arguments are wrong.
func InvalidArgument(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
