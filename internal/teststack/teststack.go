// Package teststack wires the validating services — utxostore, headers,
// the txvalidator pool and the blockvalidator — in one test process on
// one gRPC address, as `btcmesh node` does, over a real embedded NATS
// server, real badger stores and real gRPC. Only test code imports it.
package teststack

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/internal/testenv"
	"github.com/btcmesh/btcmesh/services/blockvalidator"
	"github.com/btcmesh/btcmesh/services/headers"
	"github.com/btcmesh/btcmesh/services/txvalidator"
	"github.com/btcmesh/btcmesh/services/utxostore"
)

// Stack is the validating services, built and not yet served.
type Stack struct {
	// NATS is the connection every service uses.
	NATS *nats.Conn
	// Addr is the gRPC address the services are (to be) served on.
	Addr string
	// Network is the chain they run (regtest).
	Network chain.Network
	// BlockValidatorMetrics gathers the blockvalidator's metrics.
	BlockValidatorMetrics prometheus.Gatherer
	modules               []runner.Module
}

// New builds the four services on regtest with their default settings
// (the UTXO store keeps blocks in memory between flushes, as in a node).
func New(t testing.TB) *Stack {
	t.Helper()
	nc := testenv.NATS(t)
	addr := testenv.Listener(t)
	hs, err := headers.New(headers.Config{DataDir: t.TempDir()}, testenv.Deps(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	ucfg := utxostore.DefaultConfig()
	ucfg.DataDir = t.TempDir()
	us, err := utxostore.New(ucfg, testenv.Deps(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	tv, err := txvalidator.New(txvalidator.DefaultConfig(), testenv.Deps(t, nc))
	if err != nil {
		t.Fatal(err)
	}
	bvDeps := testenv.Deps(t, nc)
	bv, err := blockvalidator.New(blockvalidator.Config{HeadersAddr: addr, UtxoStoreAddr: addr}, bvDeps)
	if err != nil {
		t.Fatal(err)
	}
	return &Stack{
		NATS: nc, Addr: addr, Network: bvDeps.Network,
		BlockValidatorMetrics: bvDeps.Metrics.(prometheus.Gatherer),
		modules:               []runner.Module{us, hs, tv, bv},
	}
}

// Serve serves the stack plus extra modules (started after it) on Addr,
// waits until all are ready, and returns a client connection to them.
// Everything stops when the test ends.
func (s *Stack) Serve(t testing.TB, extra ...runner.Module) *grpc.ClientConn {
	t.Helper()
	testenv.Serve(t, s.Addr, append(s.modules, extra...)...)
	cc, err := grpcclient.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
