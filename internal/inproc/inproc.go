// Package inproc is a gRPC channel to the services of this process:
// `btcmesh node` registers every service on it as well as on its gRPC
// server, and the services call each other through it. A call runs the
// service's handler directly, with deep copies of the request and the
// answer instead of protobuf encoding, HTTP/2 framing and a loopback
// socket: the same handler, the same status errors, no goroutine
// hand-offs on the way (which, on a busy machine, cost milliseconds per
// call on a block's serial path). Only unary methods are served.
package inproc

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Channel is both a grpc.ServiceRegistrar (services register on it) and
// a grpc.ClientConnInterface (generated clients call through it).
type Channel struct {
	mu      sync.RWMutex
	methods map[string]method
}

// method is one registered unary method with its service implementation.
type method struct {
	impl    any
	handler grpc.MethodHandler
}

// New returns an empty channel.
func New() *Channel { return &Channel{methods: make(map[string]method)} }

// RegisterService records desc's unary methods, served by impl.
func (c *Channel) RegisterService(desc *grpc.ServiceDesc, impl any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = method{impl: impl, handler: m.Handler}
	}
}

// Invoke runs the unary method on a copy of args and copies its answer
// into reply. A method nobody registered is Unimplemented.
func (c *Channel) Invoke(ctx context.Context, name string, args, reply any, _ ...grpc.CallOption) error {
	c.mu.RLock()
	m, ok := c.methods[name]
	c.mu.RUnlock()
	if !ok {
		return status.Errorf(codes.Unimplemented, "inproc: no service serves %s", name)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: %s: request %T is not a protobuf message", name, args)
	}
	out, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: %s: reply %T is not a protobuf message", name, reply)
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	dec := func(v any) error {
		dst, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("inproc: %s: handler wants %T", name, v)
		}
		proto.Merge(dst, in)
		return nil
	}
	resp, err := m.handler(m.impl, ctx, dec, nil)
	if err != nil {
		return err
	}
	msg, ok := resp.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "inproc: %s: answer %T is not a protobuf message", name, resp)
	}
	proto.Reset(out)
	proto.Merge(out, msg)
	return nil
}

// NewStream is not supported: btcmesh's services call each other with
// unary methods only.
func (c *Channel) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "inproc: streams are not supported")
}
