package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/logging"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// Default addresses. Everything binds loopback unless told otherwise.
const (
	defaultGRPCListen    = "127.0.0.1:8555"
	defaultMetricsListen = "127.0.0.1:9555"
	defaultNATSURL       = "nats://127.0.0.1:4222"
)

// common are the flags every serving command shares.
type common struct {
	network       string
	datadir       string
	grpcListen    string
	metricsListen string
	pprof         bool
	logLevel      string
	replicas      int
	drainDelay    time.Duration
	stopTimeout   time.Duration
}

func defaultDataDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".btcmesh")
	}
	return ".btcmesh"
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.network, "network", "regtest", "chain: regtest, mainnet, testnet3, testnet4 or signet")
	fs.StringVar(&c.datadir, "datadir", defaultDataDir(), "directory for stores (each service uses <datadir>/<network>/<service>)")
	fs.StringVar(&c.grpcListen, "grpc-listen", defaultGRPCListen, "HOST:PORT serving the gRPC APIs")
	fs.StringVar(&c.metricsListen, "metrics-listen", defaultMetricsListen, "HOST:PORT serving /metrics, /healthz and /readyz (empty disables)")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on --metrics-listen")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.IntVar(&c.replicas, "jetstream-replicas", 1, "copies JetStream keeps of btcmesh's streams and block bucket when creating them (3 in a NATS cluster)")
	fs.DurationVar(&c.drainDelay, "shutdown-drain", 0, "how long to report NOT_SERVING before stopping on SIGTERM")
	fs.DurationVar(&c.stopTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight calls may take to finish on shutdown")
}

// parse reads args (and the environment) into fs, refuses stray
// arguments, validates the shared flags and fills network-dependent
// defaults. It returns the network.
func (c *common) parse(fs *flag.FlagSet, args []string) (chain.Network, error) {
	if err := config.Parse(fs, args); err != nil {
		return chain.Network{}, err
	}
	if fs.NArg() > 0 {
		return chain.Network{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	network, err := c.validate()
	if err != nil {
		return chain.Network{}, err
	}
	return network, defaultP2PListen(fs, network)
}

// validate checks the shared flags and resolves the network.
func (c *common) validate() (chain.Network, error) {
	n, err := chain.Lookup(c.network)
	if err != nil {
		return chain.Network{}, fmt.Errorf("--network: %w", err)
	}
	if c.datadir == "" {
		return chain.Network{}, errors.New("--datadir must not be empty")
	}
	if err := config.CheckHostPort("grpc-listen", c.grpcListen); err != nil {
		return chain.Network{}, err
	}
	if c.pprof && c.metricsListen == "" {
		return chain.Network{}, errors.New("--pprof needs --metrics-listen")
	}
	if c.metricsListen != "" {
		if err := config.CheckHostPort("metrics-listen", c.metricsListen); err != nil {
			return chain.Network{}, err
		}
	}
	if _, err := logging.New(io.Discard, "", c.logLevel); err != nil {
		return chain.Network{}, err
	}
	if c.replicas < 1 || c.replicas > 5 {
		return chain.Network{}, fmt.Errorf("--jetstream-replicas must be 1 to 5, got %d", c.replicas)
	}
	if c.drainDelay < 0 || c.stopTimeout <= 0 {
		return chain.Network{}, errors.New("--shutdown-drain must be >= 0 and --shutdown-timeout > 0")
	}
	return n, nil
}

// serviceDir is where service keeps its state.
func (c *common) serviceDir(service string) string {
	return filepath.Join(c.datadir, c.network, service)
}

// newRegistry is a Prometheus registry with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// runnerOptions turns the shared flags into runner options.
func (c *common) runnerOptions(reg *prometheus.Registry, log *slog.Logger) runner.Options {
	return runner.Options{
		GRPCListen: c.grpcListen, MetricsListen: c.metricsListen, Profiling: c.pprof, Registry: reg, Log: log,
		Network: c.network, DrainDelay: c.drainDelay, StopTimeout: c.stopTimeout,
	}
}
