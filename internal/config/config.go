// Package config gives every btcmesh command the same configuration
// shape: command-line flags, each overridable from the environment as
// BTCMESH_<FLAG_NAME> (upper case, dashes as underscores), with explicit
// flags winning over the environment.
package config

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
)

// EnvName is the environment variable that can set flag name.
func EnvName(name string) string {
	return "BTCMESH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the
// command line from its environment variable. A bad value in either place
// is an error naming the flag.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var firstErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || firstErr != nil {
			return
		}
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if list, isList := f.Value.(*StringList); isList {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					_ = list.Set(item)
				}
			}
			return
		}
		if err := f.Value.Set(v); err != nil {
			firstErr = fmt.Errorf("invalid value %q for %s (--%s): %w", v, EnvName(f.Name), f.Name, err)
		}
	})
	return firstErr
}

// StringList is a repeatable string flag (also comma-separated in the
// environment).
type StringList []string

// String joins the values with commas.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *StringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// CheckHostPort validates a HOST:PORT flag value, returning an error that
// names the flag.
func CheckHostPort(flagName, value string) error {
	if value == "" {
		return fmt.Errorf("--%s must not be empty", flagName)
	}
	if _, _, err := net.SplitHostPort(value); err != nil {
		return fmt.Errorf("--%s %q is not HOST:PORT: %w", flagName, value, err)
	}
	return nil
}
