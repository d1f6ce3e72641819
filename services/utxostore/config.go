package utxostore

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Default tuning values.
const (
	// DefaultCacheMB is the default badger block cache size.
	DefaultCacheMB = 256
	// DefaultMemTableMB is the default badger memtable size; it bounds the
	// size of one block's transaction (see the package comment).
	DefaultMemTableMB = 128
	// minMemTableMB keeps room for a 4 MB block in one transaction.
	minMemTableMB = 64
	// maxMemTableMB keeps the memtable arenas within reason.
	maxMemTableMB = 2048
	// DefaultCoinCacheMB is the default coin cache budget (about 600k
	// coins).
	DefaultCoinCacheMB = 64
	// DefaultFilterMB is the default key filter size: it holds about 54
	// million outpoints well (regtest, signet and testnet sets, or the
	// outputs created since the last rebuild).
	DefaultFilterMB = 64
	// DefaultFlushInterval is how long connected blocks may stay in
	// memory before they are written to badger.
	DefaultFlushInterval = 10 * time.Second
)

// Config holds the utxostore's settings.
type Config struct {
	// DataDir is the service's own directory (set by the command).
	DataDir string
	// CacheMB is badger's block cache in MiB (--utxostore-cache-mb).
	CacheMB int
	// MemTableMB is badger's memtable size in MiB
	// (--utxostore-memtable-mb); one block's transaction may use 15% of it.
	MemTableMB int
	// FlushInterval is how long connected blocks' changes may stay in
	// memory before one fsynced badger transaction writes them
	// (--utxostore-flush-interval); 0 writes every block at once.
	FlushInterval time.Duration
	// CoinCacheMB bounds the in-memory cache of recent and looked-up
	// coins (--utxostore-coin-cache-mb); 0 disables it.
	CoinCacheMB int
	// FilterMB sizes the filter that answers lookups of outpoints that
	// never held a coin without reading badger (--utxostore-filter-mb);
	// 0 disables it.
	FilterMB int
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{CacheMB: DefaultCacheMB, MemTableMB: DefaultMemTableMB, FlushInterval: DefaultFlushInterval, CoinCacheMB: DefaultCoinCacheMB, FilterMB: DefaultFilterMB}
}

// RegisterFlags registers the utxostore's own tuning flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.CacheMB, "utxostore-cache-mb", d.CacheMB, "UTXO store: badger block cache size in MiB")
	fs.IntVar(&c.MemTableMB, "utxostore-memtable-mb", d.MemTableMB,
		"UTXO store: badger memtable size in MiB; one block's atomic write may use 15% of it")
	fs.DurationVar(&c.FlushInterval, "utxostore-flush-interval", d.FlushInterval,
		"UTXO store: keep connected blocks' changes in memory at most this long, then write them in one fsynced transaction (sooner when they fill a sixth of the memtable; 0: every block); after a crash the store is at its last write and the blocks since are connected again")
	fs.IntVar(&c.CoinCacheMB, "utxostore-coin-cache-mb", d.CoinCacheMB,
		"UTXO store: memory in MiB for recently created and looked-up coins, so block connects need not read them back (0: off)")
	fs.IntVar(&c.FilterMB, "utxostore-filter-mb", d.FilterMB,
		"UTXO store: memory in MiB for a filter of the outpoints on disk, so that lookups of outputs that never existed (every block's BIP30 check) skip the disk; about 10 bits per coin hold it well (0: off)")
}

// Validate checks the settings, naming the bad flag.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("utxostore: data directory is empty (--datadir)")
	}
	if c.CacheMB < 1 {
		return fmt.Errorf("--utxostore-cache-mb must be >= 1 (got %d)", c.CacheMB)
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("--utxostore-flush-interval must be >= 0 (got %s)", c.FlushInterval)
	}
	if c.CoinCacheMB < 0 {
		return fmt.Errorf("--utxostore-coin-cache-mb must be >= 0 (got %d)", c.CoinCacheMB)
	}
	if c.FilterMB < 0 {
		return fmt.Errorf("--utxostore-filter-mb must be >= 0 (got %d)", c.FilterMB)
	}
	if c.MemTableMB < minMemTableMB || c.MemTableMB > maxMemTableMB {
		return fmt.Errorf("--utxostore-memtable-mb must be between %d and %d (got %d)",
			minMemTableMB, maxMemTableMB, c.MemTableMB)
	}
	return nil
}
