package rules

import (
	"errors"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBtcdErrorsTranslateToCoreNames(t *testing.T) {
	err := FromBtcd(blockchain.RuleError{ErrorCode: blockchain.ErrImmatureSpend, Description: "too early"})
	if !errors.Is(err, PrematureCoinbaseSpend) {
		t.Fatalf("want premature spend, got %v", err)
	}
	if err.Error() != "bad-txns-premature-spend-of-coinbase: too early" {
		t.Fatalf("unexpected text %q", err.Error())
	}
}

func TestStatusRoundTripKeepsTheRule(t *testing.T) {
	st := ToStatus(New(MissingInputs, "input 0"))
	if status.Code(st) != codes.FailedPrecondition {
		t.Fatalf("code %v", status.Code(st))
	}
	re, ok := FromStatus(st)
	if !ok || re.Kind != MissingInputs || re.Detail != "input 0" {
		t.Fatalf("round trip lost the rule: %+v %v", re, ok)
	}
	if status.Code(ToStatus(New(Malformed, "x"))) != codes.InvalidArgument {
		t.Fatal("malformed input must be InvalidArgument")
	}
	if status.Code(ToStatus(errors.New("disk on fire"))) != codes.Internal {
		t.Fatal("non-rule errors are Internal")
	}
}
