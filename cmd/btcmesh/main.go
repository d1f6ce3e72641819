// Command btcmesh is the only btcmesh binary: `btcmesh node` runs every
// service in one process, `btcmesh <service>` runs one service against an
// external NATS and the other services' gRPC addresses, `btcmesh ctl` is
// the gRPC client for people, and `btcmesh healthcheck` probes a process.
// This package only wires; the work lives in services/ and internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/btcmesh/btcmesh/internal/version"
)

const usage = `btcmesh — a Bitcoin full node as microservices

Usage:
  btcmesh node [flags]          run every service in one process (embedded NATS, badger, regtest)
  btcmesh <service> [flags]     run one service: headers, utxostore, txvalidator, blockvalidator, miner, p2p
  btcmesh import [flags] FILE…  load blk*.dat / bootstrap.dat files into the data dir, validating every block
  btcmesh ctl [flags] VERB ...  call a running node, with bitcoin-cli's verbs (btcmesh ctl help)
  btcmesh healthcheck [flags]   exit 0 when a process reports SERVING on grpc.health.v1
  btcmesh version               print the version

Run 'btcmesh <command> -h' for a command's flags. Every flag can also be set
from the environment as BTCMESH_<FLAG> (e.g. BTCMESH_DATADIR).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "node":
		err = runNode(ctx, rest, stderr)
	case "import":
		err = runImport(ctx, rest, stdout, stderr)
	case "ctl":
		return runCtl(ctx, rest, stdin, stdout, stderr)
	case "healthcheck":
		err = runHealthcheck(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "btcmesh", version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		if _, ok := lookupUnit(cmd); !ok {
			fmt.Fprintf(stderr, "btcmesh: unknown command %q\n\n%s", cmd, usage)
			return 2
		}
		err = runService(ctx, cmd, rest, stderr)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "btcmesh %s: %v\n", cmd, err)
		return 1
	}
}
