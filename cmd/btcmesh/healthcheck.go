package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
)

// runHealthcheck asks a process's grpc.health.v1 service for a status; it
// is the container health check, so it needs no shell or extra tools.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultGRPCListen, "HOST:PORT of the process's gRPC server")
	service := fs.String("service", "", "gRPC service name to check (empty: the whole process)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for an answer")
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if err := config.CheckHostPort("addr", *addr); err != nil {
		return err
	}
	cc, err := grpcclient.Dial(*addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		return fmt.Errorf("health check of %s: %w", *addr, err)
	}
	fmt.Fprintln(stdout, resp.GetStatus().String())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s is %s", *addr, resp.GetStatus())
	}
	return nil
}
