// Package grpcclient dials other btcmesh services over gRPC with the
// options every internal client needs.
package grpcclient

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// MaxMessageBytes bounds gRPC messages; blocks travel in them.
const MaxMessageBytes = 64 << 20

// Flow-control windows for one stream and one connection: a whole block
// (up to 4 MB) is sent without waiting for the receiver's window updates,
// which on HTTP/2's 64 KiB default cost a round trip every 64 KiB.
const (
	StreamWindowBytes = 8 << 20
	ConnWindowBytes   = 16 << 20
)

// Dial returns a client connection to addr (HOST:PORT). Calls wait for the
// server to become ready rather than failing fast, so services may start in
// any order.
func Dial(addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(StreamWindowBytes),
		grpc.WithInitialConnWindowSize(ConnWindowBytes),
		grpc.WithDefaultCallOptions(
			grpc.WaitForReady(true),
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return cc, nil
}

// Connect returns local when it is set (the services of this process,
// runner.Deps.Local) and otherwise dials addr; closeFn releases what it
// opened.
func Connect(addr string, local grpc.ClientConnInterface) (cc grpc.ClientConnInterface, closeFn func() error, err error) {
	if local != nil {
		return local, func() error { return nil }, nil
	}
	conn, err := Dial(addr)
	if err != nil {
		return nil, nil, err
	}
	return conn, conn.Close, nil
}
