package main

import (
	"flag"
	"net"
	"os"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/config"

	"github.com/btcmesh/btcmesh/internal/runner"
)

// unit adapts one service package to the command line.
type unit interface {
	// name is the service's name and its subcommand.
	name() string
	// register adds the service's own flags.
	register(fs *flag.FlagSet)
	// needs lists the services whose gRPC APIs this one calls.
	needs() []string
	// configure applies the command's wiring and validates the
	// configuration; it runs before anything is started.
	configure(w wiring) error
	// build creates the configured service.
	build(deps runner.Deps) (runner.Module, error)
}

// wiring is what the command decides for a service: where its state lives
// and where the services it calls are.
type wiring struct {
	dir  string
	addr map[string]string
	// replicas is how many copies JetStream keeps of streams and buckets.
	replicas int
}

// startOrder lists every service so each starts after those it calls.
var startOrder = []string{"utxostore", "headers", "txvalidator", "blockvalidator", "miner", "p2p"}

// defaultP2PListen makes --p2p-listen default to the network's port on
// loopback when neither the flag nor its environment variable was given.
func defaultP2PListen(fs *flag.FlagSet, network chain.Network) error {
	f := fs.Lookup("p2p-listen")
	if f == nil || f.Value.String() != "" || wasSet(fs, "p2p-listen") {
		return nil
	}
	return fs.Set("p2p-listen", net.JoinHostPort("127.0.0.1", network.Params.DefaultPort))
}

// wasSet reports whether a flag was given on the command line or in the
// environment.
func wasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, inEnv := os.LookupEnv(config.EnvName(name))
	return set || inEnv
}

// lookupUnit returns a fresh adapter for the named service.
func lookupUnit(name string) (unit, bool) {
	for _, u := range allUnits() {
		if u.name() == name {
			return u, true
		}
	}
	return nil, false
}
