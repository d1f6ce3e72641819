package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	blockvalidatorv1 "github.com/btcmesh/btcmesh/proto/btcmesh/blockvalidator/v1"
	headersv1 "github.com/btcmesh/btcmesh/proto/btcmesh/headers/v1"

	"github.com/btcmesh/btcmesh/internal/blockimport"
	"github.com/btcmesh/btcmesh/internal/config"
	"github.com/btcmesh/btcmesh/internal/grpcclient"
	"github.com/btcmesh/btcmesh/internal/logging"
)

// importServices are the services an import runs: the validation pipeline
// without p2p and the miner.
var importServices = []string{"utxostore", "headers", "txvalidator", "blockvalidator"}

// runImport loads blk*.dat / bootstrap.dat files into the data dir through
// the node's own validation pipeline, started in this process.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: btcmesh import [flags] FILE...\n\n"+
			"Imports blocks from Bitcoin Core blk*.dat or bootstrap.dat files into the data dir.\n"+
			"Stop any node using the data dir first. Flags:\n")
		fs.PrintDefaults()
	}
	c := common{grpcListen: "127.0.0.1:0", replicas: 1, stopTimeout: 15 * time.Second}
	fs.StringVar(&c.network, "network", "regtest", "chain: regtest, mainnet, testnet3, testnet4 or signet")
	fs.StringVar(&c.datadir, "datadir", defaultDataDir(), "directory for stores (each service uses <datadir>/<network>/<service>)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "HOST:PORT serving /metrics (btcmesh_import_* and the services'); empty disables")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	maxPendingMB := fs.Int("import-max-pending-mb", 512, "MiB of out-of-order blocks kept in memory while waiting for their parent; beyond it they are re-read from the file")
	progress := fs.Duration("import-progress-interval", 5*time.Second, "how often progress is logged")
	callTimeout := fs.Duration("import-call-timeout", 10*time.Minute, "how long one block's validation may take")
	units := allUnits()
	for _, u := range units {
		for _, name := range importServices {
			if u.name() == name {
				u.register(fs)
			}
		}
	}
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	network, err := c.validate()
	if err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		fs.Usage()
		return errors.New("no FILE given: name one or more blk*.dat or bootstrap.dat files")
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("file %s: %w", f, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("file %s: not a regular file", f)
		}
	}
	if *maxPendingMB < 0 {
		return fmt.Errorf("--import-max-pending-mb must be >= 0, got %d", *maxPendingMB)
	}
	log, err := logging.New(os.Stderr, "import", c.logLevel)
	if err != nil {
		return err
	}

	// The services run until the import is over, not until ctx ends: an
	// interrupt stops the import, which then stops them in order.
	svcCtx, stopServices := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServices()
	reg := newRegistry()
	bound := make(chan string, 1)
	svcErr := make(chan error, 1)
	go func() {
		svcErr <- runInProcess(svcCtx, inProcess{
			c: &c, network: network, natsListen: "127.0.0.1:0",
			units: units, names: importServices, reg: reg, log: log,
			onListen: func(addr string) { bound <- addr },
		})
	}()
	var addr string
	select {
	case addr = <-bound:
	case err := <-svcErr:
		return err
	}
	cc, err := grpcclient.Dial(addr)
	if err != nil {
		stopServices()
		<-svcErr
		return err
	}
	defer cc.Close()
	if err := waitServing(ctx, healthpb.NewHealthClient(cc), svcErr); err != nil {
		stopServices()
		if serr := <-svcErr; serr != nil {
			return serr
		}
		return err
	}

	sum, runErr := blockimport.Run(ctx, blockimport.Config{
		Files: files, Net: network.Params.Net, Genesis: *network.Params.GenesisHash,
		Headers: headersv1.NewHeaderServiceClient(cc), Validator: blockvalidatorv1.NewBlockValidatorServiceClient(cc),
		Log: log, Metrics: reg, MaxPendingBytes: int64(*maxPendingMB) << 20,
		ProgressInterval: *progress, CallTimeout: *callTimeout,
	})
	stopServices()
	serr := <-svcErr
	if sum != nil {
		sum.WriteText(stdout)
	}
	switch {
	case runErr != nil:
		return runErr
	case serr != nil:
		return serr
	case sum.NothingImported():
		return errors.New("nothing could be imported (see the summary)")
	}
	return nil
}

// waitServing waits until every service reports SERVING.
func waitServing(ctx context.Context, hc healthpb.HealthClient, svcErr chan error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case err := <-svcErr:
			svcErr <- err
			if err == nil {
				err = errors.New("services stopped while starting")
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("interrupted while starting: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
