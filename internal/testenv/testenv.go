// Package testenv starts real infrastructure for tests: an embedded NATS
// server with JetStream in a temporary directory, and a runner serving
// modules over gRPC on a loopback port. Everything stops when the test ends.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// Logger returns a logger that prints only when BTCMESH_TEST_LOG is set.
func Logger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("BTCMESH_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// NATS starts an embedded NATS server with JetStream and returns a
// connection to it over its loopback listener, as a separate pod would
// connect.
func NATS(t testing.TB) *nats.Conn {
	t.Helper()
	return startNATS(t, false)
}

// NATSInProcess is NATS with the connection made through the server's
// in-memory pipe, as `btcmesh node` connects to its embedded server.
func NATSInProcess(t testing.TB) *nats.Conn {
	t.Helper()
	return startNATS(t, true)
}

func startNATS(t testing.TB, inProcess bool) *nats.Conn {
	t.Helper()
	srv, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("embedded nats: %v", err)
	}
	var opts []nats.Option
	if inProcess {
		opts = append(opts, srv.InProcess())
	}
	nc, err := bus.Connect(srv.URL(), "test", Logger(), opts...)
	if err != nil {
		srv.Shutdown()
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	return nc
}

// Deps returns runner.Deps for regtest using nc and a fresh registry.
func Deps(t testing.TB, nc *nats.Conn) runner.Deps {
	t.Helper()
	n, err := chain.Lookup("regtest")
	if err != nil {
		t.Fatal(err)
	}
	return runner.Deps{Log: Logger(), Metrics: prometheus.NewRegistry(), NATS: nc, Network: n}
}

// Listener reserves the gRPC address modules will be served on, so that
// modules that dial each other can be configured before Serve.
func Listener(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}

// Serve runs modules on addr (from Listener) and waits until every module
// is ready. The runner stops when the test ends.
func Serve(t testing.TB, addr string, modules ...runner.Module) {
	t.Helper()
	ServeInProc(t, addr, nil, modules...)
}

// ServeInProc is Serve that also registers every module's services on
// channel (the in-process channel `btcmesh node` gives its services as
// runner.Deps.Local); a nil channel is Serve.
func ServeInProc(t testing.TB, addr string, channel grpc.ServiceRegistrar, modules ...runner.Module) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runner.Run(ctx, runner.Options{
			GRPCListen: addr, Registry: prometheus.NewRegistry(), Log: Logger(),
			Network: "regtest", StopTimeout: 5 * time.Second, InProc: channel,
		}, modules...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runner: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("runner did not stop")
		}
	})
	for _, m := range modules {
		select {
		case <-m.Ready():
		case err := <-done:
			t.Fatalf("runner stopped early: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatalf("module %s not ready", m.Name())
		}
	}
}
