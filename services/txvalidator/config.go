package txvalidator

import (
	"flag"
	"fmt"
	"runtime"
)

// Config holds the txvalidator's settings.
type Config struct {
	// SigCacheEntries bounds the process-wide signature cache.
	SigCacheEntries int
	// Workers is how many goroutines verify scripts at once.
	Workers int
}

// DefaultConfig returns the defaults the flags register.
func DefaultConfig() Config {
	return Config{SigCacheEntries: 100000, Workers: runtime.GOMAXPROCS(0)}
}

// RegisterFlags registers the txvalidator's own flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.SigCacheEntries, "txvalidator-sigcache-entries", d.SigCacheEntries,
		"signatures kept in the txvalidator's verified-signature cache (0 disables it)")
	fs.IntVar(&c.Workers, "txvalidator-workers", d.Workers,
		"goroutines verifying scripts in parallel (default GOMAXPROCS)")
}

// Validate checks the settings, naming the bad flag.
func (c *Config) Validate() error {
	if c.SigCacheEntries < 0 {
		return fmt.Errorf("--txvalidator-sigcache-entries must be >= 0, got %d", c.SigCacheEntries)
	}
	if c.Workers < 1 {
		return fmt.Errorf("--txvalidator-workers must be >= 1, got %d", c.Workers)
	}
	if c.Workers > 4096 {
		return fmt.Errorf("--txvalidator-workers must be <= 4096, got %d", c.Workers)
	}
	return nil
}
