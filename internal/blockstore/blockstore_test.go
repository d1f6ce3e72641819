package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestPutKeepsFirstDeleteForgets checks that a second Put under a hash
// keeps the first bytes, and that after Delete (bucket and cache) the
// hash is free for other bytes.
func TestPutKeepsFirstDeleteForgets(t *testing.T) {
	js, err := jetstream.New(testenv.NATSInProcess(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := blockstore.Open(ctx, js, "blocks", 1, blockstore.NewCache(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	h := chainhash.Hash{7}
	get := func() []byte {
		t.Helper()
		b, err := s.Get(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := s.Put(ctx, h, []byte("mutated")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, h, []byte("real")); err != nil {
		t.Fatal(err)
	}
	if got := get(); !bytes.Equal(got, []byte("mutated")) {
		t.Fatalf("second put replaced the first: %q", got)
	}
	if err := s.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, h); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("deleted block still there: %v", err)
	}
	if err := s.Delete(ctx, h); err != nil {
		t.Fatalf("deleting a missing block: %v", err)
	}
	if err := s.Put(ctx, h, []byte("real")); err != nil {
		t.Fatal(err)
	}
	if got := get(); !bytes.Equal(got, []byte("real")) {
		t.Fatalf("after delete and put: %q", got)
	}
}
