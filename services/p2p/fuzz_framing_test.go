package p2p

// Fuzz targets for the v1 message framing: btcd's header/payload reader,
// which the peer package runs on every inbound byte, and our sniffConn
// wrapper, which watches the same bytes for commands btcd skips
// (wtxidrelay) and rewrites the user agent of our own version message.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// refFrame is one frame header as a reference parser sees it.
type refFrame struct {
	cmd    string
	length uint32
}

// refFrames parses a byte stream into v1 frame headers the way sniffConn
// must: it stops at the first header with another magic or a length over
// maxSniffPayload, and at a header cut short.
func refFrames(stream []byte, magic wire.BitcoinNet) []refFrame {
	var out []refFrame
	for len(stream) >= wire.MessageHeaderSize {
		if wire.BitcoinNet(binary.LittleEndian.Uint32(stream[0:4])) != magic {
			return out
		}
		n := binary.LittleEndian.Uint32(stream[16:20])
		if n > maxSniffPayload {
			return out
		}
		out = append(out, refFrame{cmd: cmdOf(stream[4:16]), length: n})
		stream = stream[wire.MessageHeaderSize:]
		if uint64(len(stream)) < uint64(n) {
			return out
		}
		stream = stream[n:]
	}
	return out
}

// FuzzReadMessage feeds an arbitrary byte stream to btcd's message reader,
// as the peer package does after the handshake: it must never panic, every
// message it returns must re-frame to a message that reads back with the
// same payload, and it must stop at the first error (the peer is then
// disconnected by btcd or by onReadError).
func FuzzReadMessage(f *testing.F) {
	magic := chaincfg.RegressionNetParams.Net
	f.Add(byte(0x80), []byte{})
	f.Fuzz(func(t *testing.T, sel byte, stream []byte) {
		pver, enc := fuzzSel(sel)
		r := bytes.NewReader(stream)
		for i := 0; i < 64; i++ {
			before := r.Len()
			n, msg, payload, err := wire.ReadMessageWithEncodingN(r, pver, magic, enc)
			if n < 0 || n > before {
				t.Fatalf("read %d bytes of %d", n, before)
			}
			if errors.Is(err, wire.ErrUnknownMessage) {
				continue // skipped, as btcd's peer does
			}
			if err != nil {
				var me *wire.MessageError
				if errors.As(err, &me) {
					// onReadError's input: it must be a MessageError or
					// an I/O error, never a panic.
					_ = me.Error()
				}
				return
			}
			if uint32(len(payload)) > wire.MaxProtocolMessageLength || uint32(len(payload)) > msg.MaxPayloadLength(pver) {
				t.Fatalf("%s payload of %d bytes accepted", msg.Command(), len(payload))
			}
			var frame bytes.Buffer
			if _, err := wire.WriteMessageWithEncodingN(&frame, msg, pver, magic, enc); err != nil {
				t.Fatalf("re-frame %s: %v", msg.Command(), err)
			}
			_, msg2, payload2, err := wire.ReadMessageWithEncodingN(bytes.NewReader(frame.Bytes()), pver, magic, enc)
			if err != nil {
				t.Fatalf("re-framed %s does not read: %v", msg.Command(), err)
			}
			if msg2.Command() != msg.Command() {
				t.Fatalf("%s read back as %s", msg.Command(), msg2.Command())
			}
			var e1, e2 bytes.Buffer
			_ = msg.BtcEncode(&e1, pver, enc)
			_ = msg2.BtcEncode(&e2, pver, enc)
			if !bytes.Equal(e1.Bytes(), e2.Bytes()) || !bytes.Equal(payload2, e1.Bytes()) {
				t.Fatalf("%s changed through re-framing", msg.Command())
			}
		}
	})
}

// chunkConn is a net.Conn whose reads return a stream in given chunk
// sizes and whose writes are collected.
type chunkConn struct {
	net.Conn
	in     []byte
	chunks []byte
	out    bytes.Buffer
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := len(c.in)
	if len(c.chunks) > 0 {
		n = int(c.chunks[0])%97 + 1
		c.chunks = c.chunks[1:]
	}
	n = min(n, len(b), len(c.in))
	copy(b, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkConn) Write(b []byte) (int, error) { return c.out.Write(b) }

func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *chunkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *chunkConn) SetDeadline(time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzSniffConnRead reads an arbitrary stream through sniffConn in
// arbitrary chunk sizes: the bytes must pass through unchanged, and the
// commands it reports must be exactly the frame headers a reference parser
// finds (so wtxidrelay is seen however the stream is split, and never
// inside a payload).
func FuzzSniffConnRead(f *testing.F) {
	magic := chaincfg.RegressionNetParams.Net
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 2, 3}, []byte{0})
	f.Fuzz(func(t *testing.T, chunks, stream []byte) {
		var seen []string
		sc := &sniffConn{Conn: &chunkConn{in: append([]byte(nil), stream...), chunks: chunks}, magic: magic,
			onCommand: func(cmd string) { seen = append(seen, cmd) }}
		got, err := io.ReadAll(sc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, stream) {
			t.Fatal("sniffConn altered the bytes read")
		}
		want := refFrames(stream, magic)
		if len(seen) != len(want) {
			t.Fatalf("saw %d commands %q, want %d %v", len(seen), seen, len(want), want)
		}
		for i := range want {
			if seen[i] != want[i].cmd {
				t.Fatalf("command %d: %q, want %q", i, seen[i], want[i].cmd)
			}
		}
	})
}

// checkRewritten checks rewriteUserAgent's contract: a version frame that
// decodes comes out as a valid frame of the same version with ua as its
// user agent; anything else comes out unchanged.
func checkRewritten(t *testing.T, in, out []byte, ua string) {
	t.Helper()
	magic := chaincfg.RegressionNetParams.Net
	var orig wire.MsgVersion
	if len(in) < wire.MessageHeaderSize || orig.BtcDecode(bytes.NewBuffer(in[wire.MessageHeaderSize:]), wire.ProtocolVersion, wire.BaseEncoding) != nil {
		if !bytes.Equal(in, out) {
			t.Fatal("undecodable frame was changed")
		}
		return
	}
	if bytes.Equal(in, out) {
		// Unchanged is allowed only when re-encoding failed.
		orig.UserAgent = ua
		if _, err := wire.WriteMessageN(io.Discard, &orig, wire.ProtocolVersion, magic); err == nil && ua != "" {
			var check wire.MsgVersion
			_ = check.BtcDecode(bytes.NewBuffer(in[wire.MessageHeaderSize:]), wire.ProtocolVersion, wire.BaseEncoding)
			if check.UserAgent != ua {
				t.Fatal("version frame not rewritten")
			}
		}
		return
	}
	msg, _, err := wire.ReadMessage(bytes.NewReader(out), wire.ProtocolVersion, magic)
	if err != nil {
		t.Fatalf("rewritten version frame does not read: %v", err)
	}
	v, ok := msg.(*wire.MsgVersion)
	if !ok || v.UserAgent != ua {
		t.Fatalf("rewritten frame is %T with user agent %q", msg, v.UserAgent)
	}
	if v.ProtocolVersion != orig.ProtocolVersion || v.Services != orig.Services || v.Nonce != orig.Nonce ||
		v.LastBlock != orig.LastBlock || v.DisableRelayTx != orig.DisableRelayTx || !v.Timestamp.Equal(orig.Timestamp) {
		t.Fatalf("rewrite changed more than the user agent: %+v vs %+v", v, orig)
	}
}

// FuzzSniffConnWrite writes an arbitrary first frame (and what follows)
// through sniffConn in arbitrary chunk sizes, as btcd's peer writes our
// version message: only a decodable version frame may be changed, and only
// in its user agent; everything after it passes through unchanged.
func FuzzSniffConnWrite(f *testing.F) {
	magic := chaincfg.RegressionNetParams.Net
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, chunks, first, rest []byte) {
		const ua = "/btcmesh:fuzz/"
		cc := &chunkConn{}
		sc := &sniffConn{Conn: cc, magic: magic, userAgent: ua}
		all := append(append([]byte(nil), first...), rest...)
		for b := all; len(b) > 0; {
			n := len(b)
			if len(chunks) > 0 {
				n = min(int(chunks[0])%97+1, len(b))
				chunks = chunks[1:]
			}
			if w, err := sc.Write(b[:n]); err != nil || w != n {
				t.Fatalf("write returned %d, %v", w, err)
			}
			b = b[n:]
		}
		out := cc.out.Bytes()
		// What sniffConn holds back: the first frame, until complete.
		if len(all) < wire.MessageHeaderSize {
			if len(out) != 0 {
				t.Fatal("wrote part of a header")
			}
			return
		}
		if cmdOf(all[4:16]) != wire.CmdVersion {
			if !bytes.Equal(out, all) {
				t.Fatal("non-version stream changed")
			}
			return
		}
		end := uint64(wire.MessageHeaderSize) + uint64(binary.LittleEndian.Uint32(all[16:20]))
		if uint64(len(all)) < end {
			if len(out) != 0 {
				t.Fatal("wrote an incomplete version frame")
			}
			return
		}
		// The version frame is written rewritten (or unchanged) in one
		// piece as soon as it is complete, together with what followed it
		// in the same write; later writes pass through.
		frame := all[:end]
		rewritten := rewriteUserAgent(frame, magic, ua)
		checkRewritten(t, frame, rewritten, ua)
		if !bytes.HasPrefix(out, rewritten) || !bytes.Equal(out[len(rewritten):], all[end:]) {
			t.Fatalf("written stream is not the rewritten frame then the rest")
		}
	})
}

// FuzzRewriteUserAgent gives rewriteUserAgent an arbitrary frame.
func FuzzRewriteUserAgent(f *testing.F) {
	magic := chaincfg.RegressionNetParams.Net
	f.Add([]byte{}, "/btcmesh:0.1.0/")
	f.Fuzz(func(t *testing.T, frame []byte, ua string) {
		if len(frame) < wire.MessageHeaderSize {
			return // sniffConn.Write never passes a shorter one
		}
		out := rewriteUserAgent(frame, magic, ua)
		checkRewritten(t, frame, out, ua)
	})
}

// FuzzHashSet drives the bounded known-inventory set: it never holds more
// than its capacity, and the most recent distinct hashes are always held.
func FuzzHashSet(f *testing.F) {
	f.Add(uint8(3), []byte{1, 2, 3, 1, 4, 5, 2})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		n := int(capacity%16) + 1
		s := newHashSet(n)
		var recent []chainhash.Hash // distinct, most recent last
		for _, op := range ops {
			h := chainhash.Hash{op & 0x1f}
			if !s.has(h) {
				recent = append(recent, h)
			}
			s.add(h)
			if !s.has(h) {
				t.Fatal("just added hash not held")
			}
			if len(s.m) > n || len(s.ring) > n {
				t.Fatalf("set of capacity %d holds %d", n, len(s.m))
			}
		}
		// Insertion-order eviction: the last min(n, distinct) insertions
		// that were new are held.
		for i := max(len(recent)-n, 0); i < len(recent); i++ {
			if !s.has(recent[i]) {
				t.Fatalf("recent hash %x evicted", recent[i][:1])
			}
		}
	})
}

// FuzzCmdOf: the command field decodes to its bytes up to the first NUL.
func FuzzCmdOf(f *testing.F) {
	f.Add([]byte("wtxidrelay\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd := cmdOf(b)
		if len(cmd) > len(b) || !bytes.HasPrefix(b, []byte(cmd)) || bytes.IndexByte([]byte(cmd), 0) >= 0 {
			t.Fatalf("cmdOf(%q) = %q", b, cmd)
		}
		if len(cmd) < len(b) && b[len(cmd)] != 0 {
			t.Fatalf("cmdOf(%q) stopped early at %d", b, len(cmd))
		}
	})
}
