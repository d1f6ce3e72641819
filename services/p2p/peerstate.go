package p2p

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/peer"
	"github.com/btcsuite/btcd/wire/v2"
)

// knownInventorySize bounds how many block and tx hashes are remembered
// per peer as known to it.
const knownInventorySize = 5000

// peerState is what the service keeps about one connection.
type peerState struct {
	p       *peer.Peer
	inbound bool
	// manual is true for --connect, --addnode and addnode connections,
	// which are never banned (as Bitcoin Core does).
	manual bool
	// auto is true for outbound connections made by peer discovery.
	auto bool

	ready      atomic.Bool  // handshake complete, in the peer table
	relayTxs   atomic.Bool  // the peer's version asked for tx relay
	wtxidRelay atomic.Bool  // the peer sent wtxidrelay
	wtxidSent  atomic.Bool  // we sent wtxidrelay (BIP339 needs both)
	lastPong   atomic.Int64 // unix nanoseconds of the last pong (or of the handshake)
	feeFilter  atomic.Int64 // the peer's feefilter, sat/kvB

	mu            sync.Mutex
	score         int32
	syncedHeaders int32
	syncedBlocks  int32
	unconnecting  int
	known         *hashSet
	// invTokens is the inventory the peer may still announce (refilled
	// at invPerSecond up to invBurst since invAt; see spendInv).
	invTokens float64
	invAt     time.Time
	// askedHeaders is when an inv made us send getheaders still
	// unanswered (zero: none outstanding).
	askedHeaders time.Time

	// inflight blocks requested from this peer; guarded by Service.syncMu.
	inflight map[chainhash.Hash]struct{}
}

func newPeerState(inbound bool) *peerState {
	return &peerState{
		inbound:       inbound,
		syncedHeaders: -1,
		syncedBlocks:  -1,
		known:         newHashSet(knownInventorySize),
		inflight:      make(map[chainhash.Hash]struct{}),
	}
}

// knows reports whether the peer is known to have hash.
func (ps *peerState) knows(h chainhash.Hash) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.known.has(h)
}

// markKnown records that the peer has hash; it returns false when it
// was already known.
func (ps *peerState) markKnown(h chainhash.Hash) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.known.has(h) {
		return false
	}
	ps.known.add(h)
	return true
}

// noteHeight raises the peer's known header (and optionally block) height.
func (ps *peerState) noteHeight(headers, blocks int32) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.syncedHeaders = max(ps.syncedHeaders, headers)
	ps.syncedBlocks = max(ps.syncedBlocks, blocks)
}

// bestHeight is the highest block the peer is believed to have.
func (ps *peerState) bestHeight() int32 {
	ps.mu.Lock()
	h := ps.syncedHeaders
	ps.mu.Unlock()
	return max(h, ps.p.LastBlock(), ps.p.StartingHeight())
}

func (ps *peerState) id() int32 { return ps.p.ID() }

func (ps *peerState) direction() string {
	if ps.inbound {
		return "inbound"
	}
	return "outbound"
}

// Inventory flood control. Honest nodes trickle at most about a thousand
// entries every few seconds (Core, btcd) and answer getblocks with 500:
// a peer may announce two full inv messages at once and invPerSecond on
// average after that.
const (
	invBurst     = 2 * wire.MaxInvPerMsg
	invPerSecond = 5000
)

// spendInv charges n announced entries (at least one per message) to the
// peer's budget; it returns false once the peer exceeded it.
func (ps *peerState) spendInv(n int, now time.Time) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.invAt.IsZero() {
		ps.invTokens = invBurst
	} else if dt := now.Sub(ps.invAt).Seconds(); dt > 0 {
		ps.invTokens = min(ps.invTokens+dt*invPerSecond, invBurst)
	}
	ps.invAt = now
	ps.invTokens -= float64(max(n, 1))
	return ps.invTokens >= 0
}

// headersResponseTime is how long an inv-triggered getheaders may stay
// unanswered before another inv triggers a new one, so inv floods cannot
// make us spam getheaders. Shorter than Core's HEADERS_RESPONSE_TIME (2
// min) because btcd leaves getheaders unanswered while it is not current.
const headersResponseTime = 15 * time.Second

// mayAskHeaders reports whether an inv may trigger getheaders now, and
// if so records it as outstanding.
func (ps *peerState) mayAskHeaders(now time.Time) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.askedHeaders.IsZero() && now.Sub(ps.askedHeaders) < headersResponseTime {
		return false
	}
	ps.askedHeaders = now
	return true
}

// headersAnswered notes that the peer sent a headers message.
func (ps *peerState) headersAnswered() {
	ps.mu.Lock()
	ps.askedHeaders = time.Time{}
	ps.mu.Unlock()
}

// hashSet is a bounded set of hashes forgetting the oldest first.
// It is not safe for concurrent use.
type hashSet struct {
	m    map[chainhash.Hash]struct{}
	ring []chainhash.Hash
	next int
}

func newHashSet(n int) *hashSet {
	return &hashSet{m: make(map[chainhash.Hash]struct{}, n), ring: make([]chainhash.Hash, 0, n)}
}

func (s *hashSet) has(h chainhash.Hash) bool {
	_, ok := s.m[h]
	return ok
}

func (s *hashSet) add(h chainhash.Hash) {
	if _, ok := s.m[h]; ok {
		return
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, h)
	} else {
		delete(s.m, s.ring[s.next])
		s.ring[s.next] = h
		s.next = (s.next + 1) % len(s.ring)
	}
	s.m[h] = struct{}{}
}

// sniffConn watches the v1 message framing of what is read from a peer,
// to see commands btcd's wire package does not decode (wtxidrelay, which
// it skips as unknown). It never alters the bytes.
type sniffConn struct {
	net.Conn
	magic     wire.BitcoinNet
	onCommand func(cmd string)

	hdr  [24]byte
	hdrN int
	skip uint64
	dead bool

	// userAgent replaces the user agent of the version message we write
	// (btcd's wire package always prefixes its own "/btcwire:x/").
	userAgent string
	wbuf      []byte
	wDone     bool

	// sendWtxidRelay, when set, makes Write insert a BIP339 wtxidrelay
	// message before our sendaddrv2 (which btcd's peer sends, before its
	// verack, only to peers of protocol 70016 and up) on v1 connections;
	// it is called when inserted.
	sendWtxidRelay func()
	ohdr           [24]byte
	ohdrN          int
	oskip          uint64
	oDone          bool
}

// Write passes bytes through, except that it holds back the first
// message until complete and, when it is our version message, rewrites
// its user agent.
func (c *sniffConn) Write(b []byte) (int, error) {
	if c.wDone || c.userAgent == "" {
		if c.wDone && c.sendWtxidRelay != nil && !c.oDone {
			_, err := c.Conn.Write(c.frameOut(b))
			return len(b), err
		}
		return c.Conn.Write(b)
	}
	c.wbuf = append(c.wbuf, b...)
	if len(c.wbuf) < 24 {
		return len(b), nil
	}
	if cmdOf(c.wbuf[4:16]) != wire.CmdVersion {
		c.wDone, c.oDone = true, true // not v1 (BIP324 v2) or not ours
		_, err := c.Conn.Write(c.wbuf)
		c.wbuf = nil
		return len(b), err
	}
	end := 24 + uint64(binary.LittleEndian.Uint32(c.wbuf[16:20]))
	if uint64(len(c.wbuf)) < end {
		return len(b), nil
	}
	c.wDone = true
	// Rewrite the version frame alone: bytes after it in the same write
	// belong to the next message.
	out := rewriteUserAgent(c.wbuf[:end], c.magic, c.userAgent)
	rest := c.wbuf[end:]
	if c.sendWtxidRelay != nil {
		rest = c.frameOut(rest)
	}
	out = append(out[:len(out):len(out)], rest...)
	c.wbuf = nil
	_, err := c.Conn.Write(out)
	return len(b), err
}

// frameOut follows the v1 frames we write after our version message
// until sendaddrv2 or verack, inserting wtxidrelay before sendaddrv2; it
// returns the bytes to write now (a partial frame header is held back).
func (c *sniffConn) frameOut(b []byte) []byte {
	out := make([]byte, 0, len(b)+wire.MessageHeaderSize)
	for len(b) > 0 && !c.oDone {
		if c.oskip > 0 {
			k := min(c.oskip, uint64(len(b)))
			out = append(out, b[:k]...)
			c.oskip -= k
			b = b[k:]
			continue
		}
		k := copy(c.ohdr[c.ohdrN:], b)
		c.ohdrN += k
		b = b[k:]
		if c.ohdrN < len(c.ohdr) {
			break
		}
		c.ohdrN = 0
		switch {
		case wire.BitcoinNet(binary.LittleEndian.Uint32(c.ohdr[0:4])) != c.magic:
			c.oDone = true
		case cmdOf(c.ohdr[4:16]) == wire.CmdSendAddrV2:
			out = append(out, wtxidRelayFrame(c.magic)...)
			c.oDone = true
			c.sendWtxidRelay()
		case cmdOf(c.ohdr[4:16]) == wire.CmdVerAck:
			c.oDone = true
		}
		out = append(out, c.ohdr[:]...)
		c.oskip = uint64(binary.LittleEndian.Uint32(c.ohdr[16:20]))
	}
	return append(out, b...)
}

// rewriteUserAgent re-encodes a framed version message with another user
// agent; on any decoding problem it returns the frame unchanged.
func rewriteUserAgent(frame []byte, magic wire.BitcoinNet, ua string) []byte {
	var msg wire.MsgVersion
	if err := msg.BtcDecode(bytes.NewBuffer(frame[24:]), wire.ProtocolVersion, wire.BaseEncoding); err != nil {
		return frame
	}
	msg.UserAgent = ua
	var buf bytes.Buffer
	if _, err := wire.WriteMessageN(&buf, &msg, wire.ProtocolVersion, magic); err != nil {
		return frame
	}
	return buf.Bytes()
}

// cmdOf decodes a NUL-padded command field.
func cmdOf(b []byte) string {
	end := 0
	for end < len(b) && b[end] != 0 {
		end++
	}
	return string(b[:end])
}

// maxSniffPayload is beyond any valid message: stop sniffing there.
const maxSniffPayload = 32 << 20

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.dead {
		c.feed(b[:n])
	}
	return n, err
}

func (c *sniffConn) feed(b []byte) {
	for len(b) > 0 && !c.dead {
		if c.skip > 0 {
			k := min(c.skip, uint64(len(b)))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.hdrN:], b)
		c.hdrN += k
		b = b[k:]
		if c.hdrN < len(c.hdr) {
			return
		}
		c.hdrN = 0
		if wire.BitcoinNet(binary.LittleEndian.Uint32(c.hdr[0:4])) != c.magic {
			c.dead = true
			return
		}
		length := binary.LittleEndian.Uint32(c.hdr[16:20])
		if length > maxSniffPayload {
			c.dead = true
			return
		}
		if c.onCommand != nil {
			c.onCommand(cmdOf(c.hdr[4:16]))
		}
		c.skip = uint64(length)
	}
}

// blockReq is one block asked of a peer.
type blockReq struct {
	peer   *peerState
	height int32
	at     time.Time
}
