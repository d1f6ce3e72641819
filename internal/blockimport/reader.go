package blockimport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// headerLen is the size of a serialized block header, the smallest record
// payload that can be a block.
const headerLen = 80

// ProblemKind classifies a stretch of a file that did not yield a block.
type ProblemKind string

// The kinds of problems the reader reports.
const (
	// ProblemJunk: bytes between records that are not zero padding; they
	// were skipped while scanning for the next network magic.
	ProblemJunk ProblemKind = "junk"
	// ProblemBadLength: a magic followed by a length below 80 or above
	// 4,000,000 bytes; scanning resumed one byte after the magic.
	ProblemBadLength ProblemKind = "bad-length"
	// ProblemTruncated: a record whose declared length runs past the end of
	// the file; scanning resumed one byte after its magic.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemUndecodable: a complete record whose payload is not a block;
	// scanning resumed one byte after its magic.
	ProblemUndecodable ProblemKind = "undecodable"
)

// Problem is one stretch of a file that did not yield a block.
type Problem struct {
	// Kind classifies it.
	Kind ProblemKind
	// Path is the file.
	Path string
	// Offset is where the stretch starts in the file.
	Offset int64
	// Length is how many bytes it spans.
	Length int64
	// Detail explains it.
	Detail string
}

// Record is one block record read from a file: the payload after the magic
// and length, not yet decoded.
type Record struct {
	// File indexes the reader's paths; Path is that file.
	File int
	Path string
	// Offset is where the record's magic starts in the file.
	Offset int64
	// Raw is the payload: the serialized block.
	Raw []byte
	// Hash is the block hash of the payload's first 80 bytes.
	Hash chainhash.Hash
}

// Decode deserializes the record's payload as a block with witnesses. It
// returns the block and the bytes it used (trailing bytes in the record are
// not part of the block).
func (r Record) Decode() (*wire.MsgBlock, []byte, error) {
	var blk wire.MsgBlock
	br := bytes.NewReader(r.Raw)
	if err := blk.Deserialize(br); err != nil {
		return nil, nil, err
	}
	used := len(r.Raw) - br.Len()
	return &blk, r.Raw[:used], nil
}

// Reader scans block files in the format Bitcoin Core writes blk*.dat and
// bootstrap.dat in: repeated records of 4-byte network magic, 4-byte
// little-endian length and payload, with zero padding at the end of blk
// files. Like Core it resynchronises after damage by scanning for the next
// magic. It is not safe for concurrent use.
type Reader struct {
	paths []string
	magic [4]byte

	idx   int // current file, len(paths) when done
	f     *os.File
	br    *bufio.Reader
	pos   int64 // offset in the current file of br's next byte
	size  int64 // current file's size
	total int64 // bytes consumed in earlier files

	// covered is the offset below which bytes already belong to a
	// reported problem, so rescanning them does not count them twice.
	covered int64
	// run is the current stretch of skipped bytes.
	runStart, runLen int64
	runZero          bool

	problems     []Problem
	paddingBytes int64
}

// NewReader returns a reader of paths, in order, for the network whose
// magic is net.
func NewReader(paths []string, net wire.BitcoinNet) *Reader {
	r := &Reader{paths: paths, idx: -1}
	binary.LittleEndian.PutUint32(r.magic[:], uint32(net))
	return r
}

// Problems returns the problems found so far.
func (r *Reader) Problems() []Problem { return r.problems }

// PaddingBytes returns how many zero bytes were skipped between or after
// records.
func (r *Reader) PaddingBytes() int64 { return r.paddingBytes }

// BytesRead returns how many bytes of all files were consumed so far.
func (r *Reader) BytesRead() int64 {
	if r.f == nil {
		return r.total
	}
	return r.total + r.pos
}

// Close closes the current file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// openNext moves to the next file; it returns io.EOF after the last.
func (r *Reader) openNext() error {
	if r.f != nil {
		r.flushRun()
		r.total += r.size
		_ = r.f.Close()
		r.f = nil
	}
	r.idx++
	if r.idx >= len(r.paths) {
		return io.EOF
	}
	f, err := os.Open(r.paths[r.idx])
	if err != nil {
		return fmt.Errorf("open %s: %w", r.paths[r.idx], err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", r.paths[r.idx], err)
	}
	r.f, r.size, r.pos, r.covered = f, st.Size(), 0, 0
	r.runLen = 0
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 1<<20)
	} else {
		r.br.Reset(f)
	}
	return nil
}

// skip consumes n bytes as skipped (padding or junk).
func (r *Reader) skip(n int) error {
	buf, err := r.br.Peek(n)
	if err != nil {
		return r.ioErr(err)
	}
	for i, b := range buf {
		off := r.pos + int64(i)
		if off < r.covered {
			continue
		}
		if r.runLen == 0 {
			r.runStart, r.runZero = off, true
		}
		r.runLen++
		if b != 0 {
			r.runZero = false
		}
	}
	if _, err := r.br.Discard(n); err != nil {
		return r.ioErr(err)
	}
	r.pos += int64(n)
	return nil
}

// flushRun reports the current stretch of skipped bytes.
func (r *Reader) flushRun() {
	if r.runLen == 0 {
		return
	}
	if r.runZero {
		r.paddingBytes += r.runLen
	} else {
		r.problems = append(r.problems, Problem{Kind: ProblemJunk, Path: r.paths[r.idx], Offset: r.runStart,
			Length: r.runLen, Detail: "bytes that are not a record, skipped while scanning for the network magic"})
	}
	r.runLen = 0
}

func (r *Reader) ioErr(err error) error {
	return fmt.Errorf("read %s at offset %d: %w", r.paths[r.idx], r.pos, err)
}

// Next returns the next complete record, or io.EOF after the last file. Any
// other error is an I/O error.
func (r *Reader) Next() (Record, error) {
	if r.idx < 0 {
		if err := r.openNext(); err != nil {
			return Record{}, err
		}
	}
	for {
		if r.idx >= len(r.paths) {
			return Record{}, io.EOF
		}
		left := r.size - r.pos
		if left < 8 {
			if left > 0 {
				if err := r.skip(int(left)); err != nil {
					return Record{}, err
				}
			}
			if err := r.openNext(); err != nil {
				return Record{}, err
			}
			continue
		}
		head, err := r.br.Peek(8)
		if err != nil {
			return Record{}, r.ioErr(err)
		}
		if !bytes.Equal(head[:4], r.magic[:]) {
			// Skip to the next possible start of the magic within what
			// is buffered.
			avail := min(int64(r.br.Buffered()), left-7)
			buf, err := r.br.Peek(int(avail))
			if err != nil {
				return Record{}, r.ioErr(err)
			}
			n := bytes.IndexByte(buf[1:], r.magic[0]) + 1
			if n == 0 {
				n = len(buf)
			}
			if err := r.skip(n); err != nil {
				return Record{}, err
			}
			continue
		}
		start := r.pos
		length := int64(binary.LittleEndian.Uint32(head[4:8]))
		if length < headerLen || length > wire.MaxBlockPayload {
			r.problems = append(r.problems, Problem{Kind: ProblemBadLength, Path: r.paths[r.idx], Offset: start, Length: 8,
				Detail: fmt.Sprintf("record length %d is outside 80..%d", length, wire.MaxBlockPayload)})
			r.covered = max(r.covered, start+8)
			if err := r.skip(1); err != nil {
				return Record{}, err
			}
			continue
		}
		if start+8+length > r.size {
			r.problems = append(r.problems, Problem{Kind: ProblemTruncated, Path: r.paths[r.idx], Offset: start, Length: r.size - start,
				Detail: fmt.Sprintf("record declares %d bytes but the file ends %d bytes after its header", length, r.size-start-8)})
			r.covered = r.size
			if err := r.skip(1); err != nil {
				return Record{}, err
			}
			continue
		}
		r.flushRun()
		if _, err := r.br.Discard(8); err != nil {
			return Record{}, r.ioErr(err)
		}
		raw := make([]byte, length)
		if _, err := io.ReadFull(r.br, raw); err != nil {
			return Record{}, r.ioErr(err)
		}
		r.pos += 8 + length
		r.covered = max(r.covered, r.pos)
		return Record{File: r.idx, Path: r.paths[r.idx], Offset: start, Raw: raw, Hash: chainhash.DoubleHashH(raw[:headerLen])}, nil
	}
}

// Resync reports rec, the record Next returned last, as undecodable
// (cause) and rescans from one byte after its magic, as Bitcoin Core does:
// a damaged record may hide the start of a good one.
func (r *Reader) Resync(rec Record, cause error) error {
	if r.f == nil || rec.File != r.idx {
		return errors.New("blockimport: Resync of a record from another file")
	}
	end := rec.Offset + 8 + int64(len(rec.Raw))
	r.problems = append(r.problems, Problem{Kind: ProblemUndecodable, Path: rec.Path, Offset: rec.Offset, Length: end - rec.Offset,
		Detail: fmt.Sprintf("not a block (hash of its header would be %s): %v", rec.Hash, cause)})
	if _, err := r.f.Seek(rec.Offset+1, io.SeekStart); err != nil {
		return r.ioErr(err)
	}
	r.br.Reset(r.f)
	r.pos = rec.Offset + 1
	r.covered = max(r.covered, end)
	return nil
}

// ReadAt re-reads a record's payload from its file (for blocks kept only
// by position while waiting for their parent).
func ReadAt(path string, offset int64, length int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset+8); err != nil {
		return nil, fmt.Errorf("read %s at offset %d: %w", path, offset, err)
	}
	return buf, nil
}
