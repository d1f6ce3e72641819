package headers

import (
	"errors"
	"flag"
)

// Config holds the headers service's settings.
type Config struct {
	// DataDir is the service's own directory; the badger store lives here.
	// Set by the command.
	DataDir string
}

// RegisterFlags registers the service's own flags. The headers service has
// none: its only setting, DataDir, is set by the command.
func (c *Config) RegisterFlags(_ *flag.FlagSet) {}

// Validate reports a missing data directory.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("--datadir must be set for the headers service")
	}
	return nil
}
