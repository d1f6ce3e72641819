package blockvalidator

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Defaults of the service's own flags.
const (
	// DefaultMaxOrphans is the default of --blockvalidator-orphans.
	DefaultMaxOrphans = 100
	// DefaultScriptTimeout is the default of --blockvalidator-script-timeout.
	DefaultScriptTimeout = 30 * time.Second
)

// Config holds the block validator's settings.
type Config struct {
	// HeadersAddr is the HOST:PORT of the headers service (set by the command).
	HeadersAddr string
	// UtxoStoreAddr is the HOST:PORT of the utxostore service (set by the command).
	UtxoStoreAddr string
	// Replicas of the JetStream block stream and bucket (set by the
	// command; 0 means 1).
	Replicas int
	// MaxOrphans bounds the orphan pool (--blockvalidator-orphans).
	MaxOrphans int
	// ScriptTimeout bounds one script-validation request to the
	// txvalidator pool (--blockvalidator-script-timeout).
	ScriptTimeout time.Duration
}

// RegisterFlags registers the block validator's own flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxOrphans, "blockvalidator-orphans", DefaultMaxOrphans,
		"maximum number of orphan blocks (parent unknown) held in memory")
	fs.DurationVar(&c.ScriptTimeout, "blockvalidator-script-timeout", DefaultScriptTimeout,
		"timeout of one script-validation request to the txvalidator pool (retried on expiry)")
}

// Validate checks the settings, naming the bad flag.
func (c *Config) Validate() error {
	if c.MaxOrphans <= 0 {
		return fmt.Errorf("--blockvalidator-orphans must be > 0, got %d", c.MaxOrphans)
	}
	if c.ScriptTimeout <= 0 {
		return fmt.Errorf("--blockvalidator-script-timeout must be > 0, got %s", c.ScriptTimeout)
	}
	if c.Replicas < 0 {
		return errors.New("blockvalidator replicas must be >= 0")
	}
	return nil
}

// withDefaults fills zero values (a Config built in code rather than from
// flags) with the flag defaults.
func (c Config) withDefaults() Config {
	if c.MaxOrphans == 0 {
		c.MaxOrphans = DefaultMaxOrphans
	}
	if c.ScriptTimeout == 0 {
		c.ScriptTimeout = DefaultScriptTimeout
	}
	return c
}
