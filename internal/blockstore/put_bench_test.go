package blockstore_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/btcmesh/btcmesh/internal/blockstore"
	"github.com/btcmesh/btcmesh/internal/testenv"
)

// BenchmarkPut stores 1 MiB blocks in a JetStream bucket on an embedded
// server reached in-process, as `btcmesh node` stores them.
func BenchmarkPut(b *testing.B) {
	nc := testenv.NATSInProcess(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	s, err := blockstore.Open(context.Background(), js, "blocks", 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	blk := make([]byte, 1<<20)
	rand.Read(blk)
	b.SetBytes(int64(len(blk)))
	for i := 0; b.Loop(); i++ {
		var h chainhash.Hash
		rand.Read(h[:])
		if err := s.Put(context.Background(), h, blk); err != nil {
			b.Fatal(err)
		}
	}
}
