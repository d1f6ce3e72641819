package p2p

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/btcmesh/btcmesh/internal/chain"
	"github.com/btcmesh/btcmesh/internal/config"
)

// Defaults of the service's flags.
const (
	// DefaultMaxPeers is the default of --max-peers.
	DefaultMaxPeers = 125
	// DefaultBanDuration is the default of --p2p-ban-duration.
	DefaultBanDuration = 24 * time.Hour
)

// Config holds the p2p service's settings.
//
// Fields set by the command (not flags): HeadersAddr, BlockValidatorAddr,
// DataDir. Listen's value when RegisterFlags is called becomes the default
// of --p2p-listen (see DefaultListen).
type Config struct {
	// HeadersAddr is HOST:PORT of the headers service's gRPC API.
	HeadersAddr string
	// BlockValidatorAddr is HOST:PORT of the blockvalidator's gRPC API.
	// Blocks reach the blockvalidator through the block store and the
	// block.received stream, so this version does not dial it.
	BlockValidatorAddr string
	// DataDir is the service's own directory (ban list).
	DataDir string

	// Listen is the HOST:PORT of the inbound listener; empty disables it.
	Listen string
	// Connect lists the only peers to connect to, when given.
	Connect []string
	// AddNode lists peers to connect to in addition to the others.
	AddNode []string
	// MaxPeers bounds the number of connections.
	MaxPeers int
	// BanDuration is how long a misbehaving peer's IP stays banned.
	BanDuration time.Duration
	// NoDNSSeeds disables peer discovery through DNS seeds.
	NoDNSSeeds bool
	// V2Transport enables BIP324 v2 encrypted transport: advertised with
	// NODE_P2P_V2, accepted inbound, tried first outbound with a fallback
	// to v1. The flag defaults to true; a Config built in code has it off.
	V2Transport bool

	// AllowSelfConns turns off btcd's self-connection detection, whose
	// nonce cache is global to the process: set it when several nodes or
	// test peers run in one process. Not a flag.
	AllowSelfConns bool
}

// DefaultListen is the usual --p2p-listen for network n: every interface
// on the network's default port.
func DefaultListen(n chain.Network) string {
	return net.JoinHostPort("0.0.0.0", n.Params.DefaultPort)
}

// RegisterFlags registers the p2p service's flags on fs. Values already in
// the Config become the flags' defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.BanDuration == 0 {
		c.BanDuration = DefaultBanDuration
	}
	fs.StringVar(&c.Listen, "p2p-listen", c.Listen, "HOST:PORT to accept Bitcoin peers on (empty disables inbound connections)")
	fs.Var((*config.StringList)(&c.Connect), "connect", "HOST[:PORT] to connect to; when given, connect only to these (repeatable)")
	fs.Var((*config.StringList)(&c.AddNode), "addnode", "HOST[:PORT] to connect to and keep connected (repeatable)")
	fs.IntVar(&c.MaxPeers, "max-peers", c.MaxPeers, "maximum number of peer connections")
	fs.DurationVar(&c.BanDuration, "p2p-ban-duration", c.BanDuration, "how long a misbehaving peer's IP is banned")
	fs.BoolVar(&c.V2Transport, "p2p-v2transport", true, "use BIP324 v2 encrypted transport with peers that support it (falls back to v1)")
	fs.BoolVar(&c.NoDNSSeeds, "p2p-no-dns-seeds", c.NoDNSSeeds, "do not discover peers through DNS seeds (regtest never uses them)")
}

// Validate checks the settings, naming the bad flag.
func (c *Config) Validate() error {
	if c.HeadersAddr == "" {
		return errors.New("p2p needs the headers service address (HeadersAddr)")
	}
	if c.Listen != "" {
		if err := validHostPort(c.Listen); err != nil {
			return fmt.Errorf("--p2p-listen %q: %w", c.Listen, err)
		}
	}
	for _, a := range c.Connect {
		if err := validPeerAddr(a); err != nil {
			return fmt.Errorf("--connect %q: %w", a, err)
		}
	}
	for _, a := range c.AddNode {
		if err := validPeerAddr(a); err != nil {
			return fmt.Errorf("--addnode %q: %w", a, err)
		}
	}
	if c.MaxPeers < 0 {
		return fmt.Errorf("--max-peers must be >= 0, got %d", c.MaxPeers)
	}
	if c.BanDuration <= 0 {
		return fmt.Errorf("--p2p-ban-duration must be > 0, got %s", c.BanDuration)
	}
	return nil
}

// validHostPort checks a HOST:PORT (empty host allowed, as in ":8333").
func validHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// validPeerAddr checks HOST or HOST:PORT of a peer.
func validPeerAddr(addr string) error {
	if addr == "" {
		return errors.New("empty address")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the host alone.
		if strings.ContainsAny(addr, " /") {
			return errors.New("want HOST or HOST:PORT")
		}
		return nil
	}
	if host == "" {
		return errors.New("missing host")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// withDefaultPort appends the network's port to addr when it has none.
func withDefaultPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), port)
}
