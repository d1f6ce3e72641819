package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// banFileName is the ban list's file in the data directory.
const banFileName = "banlist.json"

// banEntry is one ban, as stored in the JSON file.
type banEntry struct {
	Subnet  string `json:"subnet"`
	Created int64  `json:"created"`
	Until   int64  `json:"until"`
	Reason  string `json:"reason"`

	ipnet *net.IPNet
}

// banList is the set of banned subnets, persisted to a JSON file.
type banList struct {
	path string // empty: not persisted

	mu   sync.Mutex
	bans map[string]*banEntry // by canonical subnet
}

var (
	errAlreadyBanned = errors.New("IP/subnet already banned")
	errNotBanned     = errors.New("IP/subnet was not banned")
)

// parseSubnet turns an IP or CIDR into a canonical network.
func parseSubnet(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("invalid IP/subnet %q", s)
		}
		if ip4 := n.IP.To4(); ip4 != nil && len(n.Mask) == net.IPv6len {
			ones, _ := n.Mask.Size()
			n = &net.IPNet{IP: ip4, Mask: net.CIDRMask(ones-96, 32)}
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("invalid IP/subnet %q", s)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return &net.IPNet{IP: ip4, Mask: net.CIDRMask(32, 32)}, nil
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}, nil
}

// newBanList loads the ban list from dir (empty dir: memory only).
func newBanList(dir string) (*banList, error) {
	b := &banList{bans: make(map[string]*banEntry)}
	if dir == "" {
		return b, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	b.path = filepath.Join(dir, banFileName)
	data, err := os.ReadFile(b.path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ban list: %w", err)
	}
	var entries []*banEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("decode ban list %s: %w", b.path, err)
	}
	now := time.Now().Unix()
	for _, e := range entries {
		n, err := parseSubnet(e.Subnet)
		if err != nil || e.Until <= now {
			continue
		}
		e.ipnet = n
		e.Subnet = n.String()
		b.bans[e.Subnet] = e
	}
	return b, nil
}

// add bans subnet until the given time. It fails when already banned.
func (b *banList) add(n *net.IPNet, until time.Time, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked()
	key := n.String()
	if _, ok := b.bans[key]; ok {
		return errAlreadyBanned
	}
	b.bans[key] = &banEntry{Subnet: key, Created: time.Now().Unix(), Until: until.Unix(), Reason: reason, ipnet: n}
	return b.saveLocked()
}

// remove lifts the ban of subnet.
func (b *banList) remove(n *net.IPNet) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked()
	key := n.String()
	if _, ok := b.bans[key]; !ok {
		return errNotBanned
	}
	delete(b.bans, key)
	return b.saveLocked()
}

// clear lifts every ban.
func (b *banList) clear() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bans = make(map[string]*banEntry)
	return b.saveLocked()
}

// banned reports whether ip is in a banned subnet.
func (b *banList) banned(ip net.IP) bool {
	if ip == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().Unix()
	for _, e := range b.bans {
		if e.Until > now && e.ipnet.Contains(ip) {
			return true
		}
	}
	return false
}

// list returns the bans in force, sorted by subnet.
func (b *banList) list() []banEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked()
	out := make([]banEntry, 0, len(b.bans))
	for _, e := range b.bans {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subnet < out[j].Subnet })
	return out
}

func (b *banList) expireLocked() {
	now := time.Now().Unix()
	for k, e := range b.bans {
		if e.Until <= now {
			delete(b.bans, k)
		}
	}
}

// saveLocked writes the file atomically (temporary file, then rename).
func (b *banList) saveLocked() error {
	if b.path == "" {
		return nil
	}
	entries := make([]*banEntry, 0, len(b.bans))
	for _, e := range b.bans {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Subnet < entries[j].Subnet })
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ban list: %w", err)
	}
	tmp := b.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write ban list: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("replace ban list: %w", err)
	}
	return nil
}

// hostIP extracts the IP of a HOST:PORT address (nil when not an IP).
func hostIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return net.ParseIP(strings.Trim(host, "[]"))
}
