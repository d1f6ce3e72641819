// Package chain maps network names to btcd's chain parameters and derives
// the consensus script flags that apply at a given height.
package chain

import (
	"fmt"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/txscript/v2"
)

// Network is one Bitcoin network btcmesh can run on.
type Network struct {
	// Name is the flag value: regtest, mainnet, testnet3, testnet4, signet.
	Name string
	// Params are btcd's parameters for the network.
	Params *chaincfg.Params
	// CSVHeight, SegwitHeight and TaprootHeight are the heights from which
	// BIP68/112/113, BIP141/143/147 and BIP341/342 are enforced. Like
	// Bitcoin Core, btcmesh treats these deployments as buried.
	CSVHeight, SegwitHeight, TaprootHeight int32
}

var networks = map[string]Network{
	"mainnet": {Name: "mainnet", Params: &chaincfg.MainNetParams,
		CSVHeight: 419328, SegwitHeight: 481824, TaprootHeight: 709632},
	"testnet3": {Name: "testnet3", Params: &chaincfg.TestNet3Params,
		CSVHeight: 770112, SegwitHeight: 834624, TaprootHeight: 2011968},
	"testnet4": {Name: "testnet4", Params: &chaincfg.TestNet4Params,
		CSVHeight: 1, SegwitHeight: 1, TaprootHeight: 1},
	"signet": {Name: "signet", Params: &chaincfg.SigNetParams,
		CSVHeight: 1, SegwitHeight: 1, TaprootHeight: 1},
	"regtest": {Name: "regtest", Params: &chaincfg.RegressionNetParams,
		CSVHeight: 1, SegwitHeight: 1, TaprootHeight: 1},
}

// Names lists the accepted network names, sorted.
func Names() []string {
	out := make([]string, 0, len(networks))
	for n := range networks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the network called name, or an error naming the choices.
func Lookup(name string) (Network, error) {
	n, ok := networks[name]
	if !ok {
		return Network{}, fmt.Errorf("unknown network %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	return n, nil
}

// Custom returns a Network for arbitrary chain parameters, for tests that
// bring their own (btcd's fullblocktests, for example). name becomes the
// NATS subject token, so it must not contain dots or spaces; csv, segwit and
// taproot are the heights from which those deployments are enforced
// (math.MaxInt32 for never). The registered networks are not affected.
func Custom(name string, p *chaincfg.Params, csv, segwit, taproot int32) Network {
	return Network{Name: name, Params: p, CSVHeight: csv, SegwitHeight: segwit, TaprootHeight: taproot}
}

// ScriptFlags returns the consensus script verification flags for a block
// at height, following the network's activation heights.
func (n Network) ScriptFlags(height int32) txscript.ScriptFlags {
	flags := txscript.ScriptBip16
	if height >= n.Params.BIP0066Height {
		flags |= txscript.ScriptVerifyDERSignatures
	}
	if height >= n.Params.BIP0065Height {
		flags |= txscript.ScriptVerifyCheckLockTimeVerify
	}
	if height >= n.CSVHeight {
		flags |= txscript.ScriptVerifyCheckSequenceVerify
	}
	if height >= n.SegwitHeight {
		flags |= txscript.ScriptVerifyWitness | txscript.ScriptStrictMultiSig
	}
	if height >= n.TaprootHeight {
		flags |= txscript.ScriptVerifyTaproot
	}
	return flags
}

// CSVActive reports whether BIP68 sequence locks and BIP113 median-time
// locktime apply at height.
func (n Network) CSVActive(height int32) bool { return height >= n.CSVHeight }

// SegwitActive reports whether witness rules apply at height.
func (n Network) SegwitActive(height int32) bool { return height >= n.SegwitHeight }

// PolicyScriptFlags are the flags the mempool enforces: consensus plus
// btcd's standard-policy flags.
func (n Network) PolicyScriptFlags(height int32) txscript.ScriptFlags {
	return n.ScriptFlags(height) | txscript.StandardVerifyFlags
}
