package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/btcmesh/btcmesh/internal/bus"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/logging"
	"github.com/btcmesh/btcmesh/internal/runner"
)

// runService runs one service alone against an external NATS server and
// the gRPC addresses of the services it calls.
func runService(ctx context.Context, name string, args []string, stderr io.Writer) error {
	u, _ := lookupUnit(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	natsURL := fs.String("nats-url", defaultNATSURL, "NATS server URL")
	addrs := map[string]string{}
	addrFlags := map[string]*string{}
	for _, dep := range u.needs() {
		addrFlags[dep] = fs.String(dep+"-addr", "", "HOST:PORT of the "+dep+" service's gRPC API (required)")
	}
	u.register(fs)
	network, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if *natsURL == "" {
		return fmt.Errorf("--nats-url must not be empty")
	}
	for dep, v := range addrFlags {
		if err := config.CheckHostPort(dep+"-addr", *v); err != nil {
			return err
		}
		addrs[dep] = *v
	}
	if err := u.configure(wiring{dir: c.serviceDir(name), addr: addrs, replicas: c.replicas}); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, name, c.logLevel)
	if err != nil {
		return err
	}
	nc, err := bus.Connect(*natsURL, name, log)
	if err != nil {
		return fmt.Errorf("--nats-url: %w", err)
	}
	defer nc.Close()
	reg := newRegistry()
	m, err := u.build(runner.Deps{Log: log, Metrics: reg, NATS: nc, Network: network})
	if err != nil {
		return err
	}
	log.Info("service starting", "network", network.Name, "grpc", c.grpcListen)
	return runner.Run(ctx, c.runnerOptions(reg, log), m)
}
