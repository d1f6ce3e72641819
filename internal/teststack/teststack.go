// Package teststack wires the validating services — utxostore, headers,
// the txvalidator pool and the blockvalidator — in one test process on
// one gRPC address, over a real embedded NATS server, real badger stores
// and real gRPC: calling each other over loopback gRPC as separate pods
// do (New), or through the in-process channel as `btcmesh node` does
// (NewNode). Only test code imports it.
package teststack

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/inproc"
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
	// node-shaped wiring (NewNode); zero for New.
	channel *inproc.Channel
	scripts runner.ScriptValidator
	blocks  *blockstore.Cache
}

// New builds the four services on regtest with their default settings
// (the UTXO store keeps blocks in memory between flushes, as in a node).
// They call each other over loopback gRPC and validate scripts through
// the NATS pool, as separate pods do.
func New(t testing.TB) *Stack {
	t.Helper()
	return build(t, &Stack{})
}

// NewNode builds the same services wired as `btcmesh node` wires them in
// one process: they call each other through an in-process channel
// (internal/inproc) and reach NATS through the embedded server's
// in-memory pipe, the blockvalidator (and any module built with Deps)
// validates scripts with the stack's own txvalidator instead of the NATS
// pool, and every block store shares one block cache.
func NewNode(t testing.TB) *Stack {
	t.Helper()
	return build(t, &Stack{channel: inproc.New(), blocks: blockstore.NewCache(blockstore.ProcessCacheBytes)})
}

func build(t testing.TB, s *Stack) *Stack {
	t.Helper()
	if s.channel != nil {
		s.NATS = testenv.NATSInProcess(t)
	} else {
		s.NATS = testenv.NATS(t)
	}
	s.Addr = testenv.Listener(t)
	hs, err := headers.New(headers.Config{DataDir: t.TempDir()}, s.Deps(t))
	if err != nil {
		t.Fatal(err)
	}
	ucfg := utxostore.DefaultConfig()
	ucfg.DataDir = t.TempDir()
	us, err := utxostore.New(ucfg, s.Deps(t))
	if err != nil {
		t.Fatal(err)
	}
	tv, err := txvalidator.New(txvalidator.DefaultConfig(), s.Deps(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.channel != nil {
		s.scripts = tv
	}
	bvDeps := s.Deps(t)
	bv, err := blockvalidator.New(blockvalidator.Config{HeadersAddr: s.Addr, UtxoStoreAddr: s.Addr}, bvDeps)
	if err != nil {
		t.Fatal(err)
	}
	s.Network = bvDeps.Network
	s.BlockValidatorMetrics = bvDeps.Metrics.(prometheus.Gatherer)
	s.modules = []runner.Module{us, hs, tv, bv}
	return s
}

// Deps returns the dependencies of a service of this stack (with a fresh
// metrics registry): for NewNode, with the in-process channel, the
// stack's txvalidator (once built) and the shared block cache.
func (s *Stack) Deps(t testing.TB) runner.Deps {
	t.Helper()
	d := testenv.Deps(t, s.NATS)
	if s.channel != nil {
		d.Local, d.Scripts, d.Blocks = s.channel, s.scripts, s.blocks
		d.Log = d.Log.With("stack", "node")
	}
	return d
}

// Serve serves the stack plus extra modules (started after it) on Addr,
// waits until all are ready, and returns a client connection to them.
// Everything stops when the test ends.
func (s *Stack) Serve(t testing.TB, extra ...runner.Module) *grpc.ClientConn {
	t.Helper()
	var channel grpc.ServiceRegistrar
	if s.channel != nil {
		channel = s.channel
	}
	testenv.ServeInProc(t, s.Addr, channel, append(s.modules, extra...)...)
	cc, err := grpcclient.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
