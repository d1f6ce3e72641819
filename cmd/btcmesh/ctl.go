package main

import (
	"context"
	"io"

	"github.com/btcmesh/btcmesh/internal/ctl"
)

// runCtl hands the arguments to the gRPC client for people.
func runCtl(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return ctl.Run(ctx, args, stdin, stdout, stderr)
}
