package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/logging"
	"github.com/btcmesh/btcmesh/internal/runner"
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
	units := allUnits()
	for _, u := range units {
		u.register(fs)
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	network, err := c.validate()
	if err != nil {
		return err
	}
	if err := defaultP2PListen(fs, network); err != nil {
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
	dir := c.serviceDir("")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--datadir %s: %w", c.datadir, err)
	}
	url := *natsURL
	if url == "" {
		embedded, err := bus.StartEmbedded(dir, *natsListen)
		if err != nil {
			return fmt.Errorf("--nats-listen: %w", err)
		}
		defer embedded.Shutdown()
		url = embedded.URL()
		log.Info("embedded nats started", "url", url, "store", dir)
	}
	nc, err := bus.Connect(url, "node", log)
	if err != nil {
		return fmt.Errorf("--nats-url: %w", err)
	}
	defer nc.Close()

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
	reg := newRegistry()
	modules := make([]runner.Module, 0, len(units))
	for _, name := range startOrder {
		u := unitNamed(units, name)
		deps := runner.Deps{Log: log.With("service", name), Metrics: reg, NATS: nc, Network: network}
		m, err := u.build(wiring{dir: c.serviceDir(name), addr: addrs, replicas: c.replicas}, deps)
		if err != nil {
			lis.Close()
			return err
		}
		modules = append(modules, m)
	}
	opts := c.runnerOptions(reg, log)
	opts.Listener = lis
	log.Info("node starting", "network", network.Name, "grpc", self, "datadir", c.datadir)
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
