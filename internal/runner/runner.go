// Package runner runs one or more btcmesh services in a process: one gRPC
// server (with grpc.health.v1, reflection and btcmesh.node.v1), one HTTP
// server for Prometheus metrics and the liveness/readiness probes, and an
// orderly shutdown: NOT_SERVING, a drain delay, graceful stop, then the
// services' contexts end.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	nodev1 "github.com/btcmesh/btcmesh/proto/btcmesh/node/v1"
	txvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/txvalidator/v1"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/version"
)

// Module is one service as the runner sees it.
type Module interface {
	// Name is the service's short name, e.g. "headers".
	Name() string
	// RegisterGRPC registers the service's APIs on s.
	RegisterGRPC(s grpc.ServiceRegistrar)
	// Run does the service's work until ctx ends.
	Run(ctx context.Context) error
	// Ready is closed once the service can serve requests.
	Ready() <-chan struct{}
}

// Deps are what the process gives every service it builds.
type Deps struct {
	// Log is the service's logger.
	Log *slog.Logger
	// Metrics is where the service registers its collectors.
	Metrics prometheus.Registerer
	// NATS is the shared NATS connection.
	NATS *nats.Conn
	// Network is the chain the process runs.
	Network chain.Network
	// Local, when set, reaches the gRPC services of this process without
	// a socket (internal/inproc); services use it instead of dialing the
	// other services' addresses.
	Local grpc.ClientConnInterface
	// Blocks, when set, caches recent blocks for every service's block
	// store in this process (blockstore.Cache).
	Blocks *blockstore.Cache
	// Scripts, when set, is a txvalidator running in this process:
	// services validate scripts through it directly instead of sending
	// batches to the NATS pool (`btcmesh node` with its own txvalidator).
	Scripts ScriptValidator
}

// ScriptValidator checks batches of transactions: the txvalidator pool on
// NATS (internal/scriptpool) or a txvalidator of the same process.
type ScriptValidator interface {
	Validate(ctx context.Context, req *txvalidatorv1.ValidateRequest) (*txvalidatorv1.ValidateResponse, error)
}

// Options configure the process around the services.
type Options struct {
	// GRPCListen is the HOST:PORT the gRPC server binds.
	GRPCListen string
	// MetricsListen is the HOST:PORT of /metrics, /healthz and /readyz
	// (empty disables it).
	MetricsListen string
	// Profiling adds Go's /debug/pprof/ handlers to the metrics server.
	Profiling bool
	// Registry gathers the metrics served on /metrics.
	Registry *prometheus.Registry
	// Log is the process logger.
	Log *slog.Logger
	// Network is the chain's name, reported by NodeService.
	Network string
	// DrainDelay is how long NOT_SERVING is advertised before the gRPC
	// server stops, so that load balancers stop routing to it.
	DrainDelay time.Duration
	// StopTimeout bounds the graceful stop before connections are cut.
	StopTimeout time.Duration
	// Listener, when set, is used instead of binding GRPCListen (the
	// caller bound it early to learn its address).
	Listener net.Listener
	// InProc, when set, gets every module's services registered as well
	// (the channel behind Deps.Local).
	InProc grpc.ServiceRegistrar
}

// Run serves modules until ctx ends, a module fails, or a client calls
// NodeService.Stop. Modules start in the order given, each once the one
// before it is ready, so a module may call the APIs of those before it.
// It returns the first module error, if any.
func Run(ctx context.Context, o Options, modules ...Module) error {
	lis := o.Listener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", o.GRPCListen); err != nil {
			return fmt.Errorf("--grpc-listen %s: %w", o.GRPCListen, err)
		}
	}
	stopCtx, requestStop := context.WithCancel(ctx)
	defer requestStop()

	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(grpcclient.MaxMessageBytes),
		grpc.MaxSendMsgSize(grpcclient.MaxMessageBytes),
		grpc.InitialWindowSize(grpcclient.StreamWindowBytes),
		grpc.InitialConnWindowSize(grpcclient.ConnWindowBytes),
	)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	names := make([]string, 0, len(modules))
	for _, m := range modules {
		names = append(names, m.Name())
	}
	nodev1.RegisterNodeServiceServer(srv, &nodeServer{network: o.Network, services: names, stop: requestStop})

	// Each module's gRPC service names, to flip their health individually.
	perModule := make(map[string][]string, len(modules))
	for _, m := range modules {
		before := srv.GetServiceInfo()
		m.RegisterGRPC(srv)
		if o.InProc != nil {
			m.RegisterGRPC(o.InProc)
		}
		for svc := range srv.GetServiceInfo() {
			if _, ok := before[svc]; !ok {
				perModule[m.Name()] = append(perModule[m.Name()], svc)
				hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
			}
		}
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	o.Log.Info("grpc serving", "addr", lis.Addr().String(), "services", names)

	ready := newReadiness(len(modules))
	var httpSrv *http.Server
	if o.MetricsListen != "" {
		var err error
		httpSrv, err = startHTTP(o, ready)
		if err != nil {
			srv.Stop()
			return err
		}
	}

	modCtx, cancelModules := context.WithCancel(context.Background())
	defer cancelModules()
	var wg sync.WaitGroup
	modErr := make(chan error, len(modules))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, m := range modules {
			if !startModule(modCtx, m, &wg, modErr, requestStop) {
				return
			}
			for _, svc := range perModule[m.Name()] {
				hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
			}
			o.Log.Info("service ready", "module", m.Name())
			if ready.markOne() {
				hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				o.Log.Info("all services ready")
			}
		}
	}()

	var firstErr error
	select {
	case <-stopCtx.Done():
	case err := <-serveErr:
		firstErr = fmt.Errorf("grpc server: %w", err)
	}
	o.Log.Info("shutting down", "drain", o.DrainDelay.String())
	ready.fail()
	hs.Shutdown() // every service NOT_SERVING
	if o.DrainDelay > 0 {
		time.Sleep(o.DrainDelay)
	}
	gracefulStop(srv, o.StopTimeout)
	cancelModules()
	wg.Wait()
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = httpSrv.Shutdown(sctx)
		cancel()
	}
	close(modErr)
	for err := range modErr {
		if firstErr == nil {
			firstErr = err
		}
	}
	o.Log.Info("stopped")
	return firstErr
}

// startModule runs m in the background and waits until it is ready. It
// returns false when m failed first or the process is stopping.
func startModule(ctx context.Context, m Module, wg *sync.WaitGroup, modErr chan<- error, requestStop func()) bool {
	exited := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(exited)
		if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			modErr <- fmt.Errorf("%s: %w", m.Name(), err)
			requestStop()
		}
	}()
	select {
	case <-m.Ready():
		return true
	case <-exited:
		return false
	case <-ctx.Done():
		return false
	}
}

func gracefulStop(srv *grpc.Server, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		srv.Stop()
	}
}

func startHTTP(o Options, ready *readiness) (*http.Server, error) {
	lis, err := net.Listen("tcp", o.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", o.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.ok() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if o.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	o.Log.Info("metrics serving", "addr", lis.Addr().String())
	return hs, nil
}

// readiness counts modules that became ready; the process is ready when
// all are and it is not shutting down.
type readiness struct {
	mu      sync.Mutex
	pending int
	stopped bool
}

func newReadiness(n int) *readiness { return &readiness{pending: n} }

func (r *readiness) markOne() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending--
	return r.pending == 0 && !r.stopped
}

func (r *readiness) fail() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

func (r *readiness) ok() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending <= 0 && !r.stopped
}

// nodeServer implements btcmesh.node.v1.NodeService.
type nodeServer struct {
	nodev1.UnimplementedNodeServiceServer
	network  string
	services []string
	stop     func()
}

func (n *nodeServer) GetInfo(context.Context, *nodev1.GetInfoRequest) (*nodev1.GetInfoResponse, error) {
	return &nodev1.GetInfoResponse{Version: version.Version, Network: n.network, Services: n.services}, nil
}

func (n *nodeServer) Stop(context.Context, *nodev1.StopRequest) (*nodev1.StopResponse, error) {
	// Answer first, then stop, as bitcoind does.
	time.AfterFunc(100*time.Millisecond, n.stop)
	return &nodev1.StopResponse{Message: "btcmesh stopping"}, nil
}

// Logger returns d.Log, or a logger that discards everything when the
// caller (a unit test) gave none.
func (d Deps) Logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
