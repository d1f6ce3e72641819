// Package blockstore keeps raw blocks in a JetStream object-store bucket,
// keyed by block hash, so that every service connected to NATS can read a
// block while events carry only its hash.
package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound means the store has no block with that hash.
var ErrNotFound = errors.New("block not in block store")

// Store reads and writes raw blocks.
type Store struct {
	obs   jetstream.ObjectStore
	cache *Cache // may be nil
}

// Open opens the bucket, creating it with replicas copies when it does not
// exist yet; an existing bucket keeps its settings, so a service starting
// with a different replica count never reconfigures it. cache, when not
// nil, keeps blocks stored or read through this Store (see Cache).
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, cache *Cache) (*Store, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	if err == nil {
		return &Store{obs: obs, cache: cache}, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open block store %s: %w", bucket, err)
	}
	obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucket,
		Description: "btcmesh raw blocks by hash",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("open block store %s: %w", bucket, err)
	}
	return &Store{obs: obs, cache: cache}, nil
}

// Put stores a block under its hash; storing the same block again is a no-op.
func (s *Store) Put(ctx context.Context, hash chainhash.Hash, block []byte) error {
	if ok, err := s.Has(ctx, hash); err != nil || ok {
		return err
	}
	if _, err := s.obs.PutBytes(ctx, hash.String(), block); err != nil {
		return fmt.Errorf("store block %s: %w", hash, err)
	}
	s.cache.put(hash, bytes.Clone(block))
	return nil
}

// Delete removes the block stored under hash, if any. Only bytes found
// not to be the block the hash names (a mutated copy, see package
// mutation) are ever deleted, so that the real block can be stored.
func (s *Store) Delete(ctx context.Context, hash chainhash.Hash) error {
	s.cache.del(hash)
	err := s.obs.Delete(ctx, hash.String())
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete block %s: %w", hash, err)
	}
	return nil
}

// Get returns the block with hash, or ErrNotFound.
// The slice must not be modified (it may be shared through the cache).
func (s *Store) Get(ctx context.Context, hash chainhash.Hash) ([]byte, error) {
	if data, ok := s.cache.get(hash); ok {
		return data, nil
	}
	data, err := s.obs.GetBytes(ctx, hash.String())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	if err != nil {
		return nil, fmt.Errorf("read block %s: %w", hash, err)
	}
	s.cache.put(hash, data)
	return data, nil
}

// Has reports whether the block is stored.
func (s *Store) Has(ctx context.Context, hash chainhash.Hash) (bool, error) {
	_, err := s.obs.GetInfo(ctx, hash.String())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up block %s: %w", hash, err)
	}
	return true, nil
}
