package chain

import (
	"testing"

	"github.com/btcsuite/btcd/txscript/v2"
)

func TestLookupRejectsUnknownNetwork(t *testing.T) {
	if _, err := Lookup("bogusnet"); err == nil {
		t.Fatal("want an error for an unknown network")
	}
	for _, n := range []string{"regtest", "mainnet", "testnet3", "testnet4", "signet"} {
		if _, err := Lookup(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
}

func TestScriptFlagsFollowActivationHeights(t *testing.T) {
	main, _ := Lookup("mainnet")
	if f := main.ScriptFlags(400000); f&txscript.ScriptVerifyWitness != 0 {
		t.Fatal("segwit must not apply before its height on mainnet")
	}
	if f := main.ScriptFlags(481824); f&txscript.ScriptVerifyWitness == 0 || f&txscript.ScriptVerifyTaproot != 0 {
		t.Fatalf("at segwit height want witness without taproot, got %v", f)
	}
	if f := main.ScriptFlags(709632); f&txscript.ScriptVerifyTaproot == 0 {
		t.Fatal("taproot must apply from its height")
	}
	reg, _ := Lookup("regtest")
	if f := reg.ScriptFlags(1); f&txscript.ScriptVerifyTaproot == 0 || f&txscript.ScriptVerifyCheckSequenceVerify == 0 {
		t.Fatal("regtest enforces everything from height 1")
	}
}

func TestCustomNetworkUsesItsOwnHeights(t *testing.T) {
	reg, _ := Lookup("regtest")
	n := Custom("fbtest", reg.Params, 1<<30, 1<<30, 1<<30)
	if n.Name != "fbtest" || n.Params != reg.Params {
		t.Fatalf("custom network %+v", n)
	}
	if n.CSVActive(1000) || n.SegwitActive(1000) || n.ScriptFlags(1000)&txscript.ScriptVerifyTaproot != 0 {
		t.Fatal("deployments must follow the custom heights")
	}
	if _, err := Lookup("fbtest"); err == nil {
		t.Fatal("a custom network must not be registered")
	}
	if again, _ := Lookup("regtest"); !again.SegwitActive(1) {
		t.Fatal("regtest changed")
	}
}
