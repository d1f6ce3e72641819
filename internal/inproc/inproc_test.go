package inproc

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestChannel calls grpc's health service through the channel: answers
// and status errors come back as over a socket, the answer is a copy,
// and what is not served is Unimplemented.
func TestChannel(t *testing.T) {
	ch := New()
	hs := health.NewServer()
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(ch, hs)
	client := healthpb.NewHealthClient(ch)
	ctx := context.Background()

	req := &healthpb.HealthCheckRequest{Service: "svc"}
	resp, err := client.Check(ctx, req)
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", resp, err)
	}
	again, err := client.Check(ctx, req)
	if err != nil || resp == again || !proto.Equal(resp, again) {
		t.Fatalf("second answer %v (%v) is not an equal copy", again, err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := client.List(ctx, &healthpb.HealthListRequest{}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if _, err := client.Watch(ctx, req); status.Code(err) != codes.Unimplemented {
		t.Fatalf("stream: %v", err)
	}
	err = ch.Invoke(ctx, "/nobody.Service/Call", req, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unregistered method: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := client.Check(cancelled, req); status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
}
