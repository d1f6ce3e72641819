package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/inproc"
	"github.com/btcmesh/btcmesh/internal/logging"
	"github.com/btcmesh/btcmesh/internal/runner"
	"github.com/btcmesh/btcmesh/services/txvalidator"
)

// runNode runs all six services in one process, sharing one gRPC server,
// one NATS connection (to an embedded server unless --nats-url is given)
// and one metrics endpoint.
func runNode(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	natsURL := fs.String("nats-url", "", "external NATS server; empty runs an embedded one with JetStream under the data dir")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "HOST:PORT of the embedded NATS server (port 0 picks one)")
	poolScripts := fs.Bool("scripts-over-nats", false,
		"send script batches to the txvalidator pool on NATS, shared with validators attached to this node's NATS, instead of validating them in this process")
	units := allUnits()
	for _, u := range units {
		u.register(fs)
	}
	network, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if *natsURL == "" {
		if err := config.CheckHostPort("nats-listen", *natsListen); err != nil {
			return err
		}
	}
	log, err := logging.New(os.Stderr, "node", c.logLevel)
	if err != nil {
		return err
	}
	return runInProcess(ctx, inProcess{
		c: &c, network: network, natsURL: *natsURL, natsListen: *natsListen, poolScripts: *poolScripts,
		units: units, names: startOrder, reg: newRegistry(), log: log,
	})
}

// inProcess describes services run in this process the way `btcmesh node`
// runs them: one gRPC server, one NATS connection (to an embedded server
// with JetStream under <datadir>/<network> unless natsURL is set), one
// metrics registry, each service's state under <datadir>/<network>/<name>.
type inProcess struct {
	c          *common
	network    chain.Network // the network c.validate resolved
	natsURL    string        // empty runs an embedded server on natsListen
	natsListen string
	// poolScripts keeps script batches on the NATS pool even though a
	// txvalidator runs in this process.
	poolScripts bool
	units       []unit   // adapters with their flags already parsed
	names       []string // which units to start, in start order
	reg         *prometheus.Registry
	log         *slog.Logger
	// onListen, when set, is called with the bound gRPC address before
	// the services start (c.grpcListen may name port 0).
	onListen func(addr string)
}

// runInProcess starts p's services and serves them until ctx ends.
func runInProcess(ctx context.Context, p inProcess) error {
	c, log := p.c, p.log
	dir := c.serviceDir("")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--datadir %s: %w", c.datadir, err)
	}
	// Bind first: every service dials the node's own gRPC address.
	lis, err := net.Listen("tcp", c.grpcListen)
	if err != nil {
		return fmt.Errorf("--grpc-listen %s: %w", c.grpcListen, err)
	}
	self := lis.Addr().String()
	addrs := map[string]string{}
	for _, name := range startOrder {
		addrs[name] = self
	}
	// Every service's settings are checked before anything starts.
	for _, name := range p.names {
		w := wiring{dir: c.serviceDir(name), addr: addrs, replicas: c.replicas}
		if err := unitNamed(p.units, name).configure(w); err != nil {
			lis.Close()
			return err
		}
	}

	url := p.natsURL
	var natsOpts []nats.Option
	if url == "" {
		embedded, err := bus.StartEmbedded(dir, p.natsListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("--nats-listen: %w", err)
		}
		defer embedded.Shutdown()
		url = embedded.URL()
		natsOpts = append(natsOpts, embedded.InProcess())
		log.Info("embedded nats started", "url", url, "store", dir)
	}
	nc, err := bus.Connect(url, "node", log, natsOpts...)
	if err != nil {
		lis.Close()
		return fmt.Errorf("--nats-url: %w", err)
	}
	defer nc.Close()

	modules := make([]runner.Module, 0, len(p.names))
	// local is this process's txvalidator once built: the services built
	// after it validate scripts through it, without NATS. channel reaches
	// every service of the process without a socket.
	var local runner.ScriptValidator
	channel := inproc.New()
	blocks := blockstore.NewCache(blockstore.ProcessCacheBytes)
	for _, name := range p.names {
		svcLog, err := logging.New(os.Stderr, name, c.logLevel)
		if err != nil {
			lis.Close()
			return err
		}
		deps := runner.Deps{Log: svcLog, Metrics: p.reg, NATS: nc, Network: p.network, Scripts: local, Local: channel, Blocks: blocks}
		m, err := unitNamed(p.units, name).build(deps)
		if err != nil {
			lis.Close()
			return err
		}
		if tv, ok := m.(*txvalidator.Service); ok && !p.poolScripts {
			local = tv
		}
		modules = append(modules, m)
	}
	opts := c.runnerOptions(p.reg, log)
	opts.Listener = lis
	opts.InProc = channel
	if p.onListen != nil {
		p.onListen(self)
	}
	log.Info("node starting", "network", p.network.Name, "grpc", self, "datadir", c.datadir, "services", p.names)
	return runner.Run(ctx, opts, modules...)
}

func unitNamed(units []unit, name string) unit {
	for _, u := range units {
		if u.name() == name {
			return u
		}
	}
	panic("btcmesh: no unit named " + name)
}
