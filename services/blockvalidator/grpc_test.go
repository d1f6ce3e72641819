package blockvalidator

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/btcmesh/btcmesh/internal/rules"
)

func TestInternalStatus(t *testing.T) {
	cases := []struct {
		err  error
		want codes.Code
	}{
		{rules.InvalidArgument("block decode failed: x"), codes.InvalidArgument},
		{fmt.Errorf("headers.GetHeader: %w", status.Error(codes.Unavailable, "down")), codes.Unavailable},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.Unavailable},
		{fmt.Errorf("headers.SetActiveTip: %w", status.Error(codes.FailedPrecondition, "no")), codes.Internal},
		{fmt.Errorf("plain"), codes.Internal},
	}
	for _, c := range cases {
		if got := status.Code(internalStatus(c.err)); got != c.want {
			t.Errorf("internalStatus(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.rejected.WithLabelValues("bad-cb-amount").Inc()
	m.connectSecond.Observe(0.1)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{
		"btcmesh_blockvalidator_blocks_connected_total",
		"btcmesh_blockvalidator_blocks_rejected_total",
		"btcmesh_blockvalidator_connect_seconds",
		"btcmesh_blockvalidator_orphans",
		"btcmesh_blockvalidator_tip_height",
	} {
		if !got[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if _, err := newMetrics(reg); err == nil {
		t.Error("registering twice should fail")
	}
}
