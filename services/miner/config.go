package miner

import (
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/btcmesh/btcmesh/internal/config"
)

// Config holds the miner's settings.
type Config struct {
	// HeadersAddr is the headers service's gRPC HOST:PORT (set by the command).
	HeadersAddr string
	// UtxoStoreAddr is the utxostore's gRPC HOST:PORT (set by the command).
	UtxoStoreAddr string
	// BlockValidatorAddr is the blockvalidator's gRPC HOST:PORT (set by the command).
	BlockValidatorAddr string

	// MaxMempoolMB bounds the mempool (serialized transaction bytes, in MiB);
	// the lowest fee-rate transactions are evicted beyond it.
	MaxMempoolMB int
	// MinRelayFee is the minimum fee rate to accept a transaction, in sat/kvB.
	MinRelayFee int64
	// Workers is how many goroutines hash when mining.
	Workers int
	// ScriptTimeout bounds one request to the txvalidator pool.
	ScriptTimeout time.Duration
}

// DefaultConfig returns the defaults the flags register.
func DefaultConfig() Config {
	return Config{
		MaxMempoolMB:  300,
		MinRelayFee:   1000,
		Workers:       runtime.GOMAXPROCS(0),
		ScriptTimeout: 30 * time.Second,
	}
}

// RegisterFlags registers the miner's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.MaxMempoolMB, "miner-max-mempool-mb", d.MaxMempoolMB,
		"mempool size limit in MiB of serialized transactions; the lowest fee-rate transactions are evicted beyond it")
	fs.Int64Var(&c.MinRelayFee, "miner-min-relay-fee", d.MinRelayFee,
		"minimum fee rate, in sat/kvB, for a transaction to enter the mempool")
	fs.IntVar(&c.Workers, "miner-workers", d.Workers,
		"goroutines hashing block headers when mining (default GOMAXPROCS)")
	fs.DurationVar(&c.ScriptTimeout, "miner-script-timeout", d.ScriptTimeout,
		"time limit of one script-validation request to the txvalidator pool")
}

// Validate checks the settings, naming the bad flag.
func (c *Config) Validate() error {
	for _, a := range []struct{ flag, value string }{
		{"headers-addr", c.HeadersAddr},
		{"utxostore-addr", c.UtxoStoreAddr},
		{"blockvalidator-addr", c.BlockValidatorAddr},
	} {
		if err := config.CheckHostPort(a.flag, a.value); err != nil {
			return err
		}
	}
	if c.MaxMempoolMB <= 0 {
		return fmt.Errorf("--miner-max-mempool-mb must be > 0, got %d", c.MaxMempoolMB)
	}
	if c.MinRelayFee < 0 {
		return fmt.Errorf("--miner-min-relay-fee must be >= 0, got %d", c.MinRelayFee)
	}
	if c.Workers < 1 || c.Workers > 4096 {
		return fmt.Errorf("--miner-workers must be between 1 and 4096, got %d", c.Workers)
	}
	if c.ScriptTimeout <= 0 {
		return fmt.Errorf("--miner-script-timeout must be > 0, got %s", c.ScriptTimeout)
	}
	return nil
}
