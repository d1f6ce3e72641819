package blockimport

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// maxListed caps each list printed in the summary.
const maxListed = 50

// FileSummary is one input file.
type FileSummary struct {
	// Path and Size of the file.
	Path string
	Size int64
	// Done is true when the file was read to its end.
	Done bool
}

// RejectedBlock is a block validation refused.
type RejectedBlock struct {
	// Hash of the block, and where its record starts.
	Hash   chainhash.Hash
	Path   string
	Offset int64
	// Reason is the rule (Bitcoin Core's name); Detail explains it.
	Reason, Detail string
}

// Orphan is a block left unimported because its parent never appeared
// (or had not appeared when the run was interrupted).
type Orphan struct {
	// Hash and Parent of the block, and where its record starts.
	Hash, Parent chainhash.Hash
	Path         string
	Offset       int64
	// Detail explains why it was left.
	Detail string
}

// Summary is what an import did.
type Summary struct {
	// Files are the inputs; BytesTotal their size, BytesRead what was consumed.
	Files                 []FileSummary
	BytesTotal, BytesRead int64
	// BlocksRead counts decodable records (including duplicates and the genesis block).
	BlocksRead int64
	// Imported counts blocks the validator accepted (SideChain of them
	// stored on a side chain with less work).
	Imported, SideChain int64
	// AlreadyPresent counts blocks the index already held with data.
	AlreadyPresent int64
	// Genesis counts copies of the network's genesis block (built in).
	Genesis int64
	// Duplicates counts blocks found more than once in the files.
	Duplicates int64
	// OutOfOrder counts blocks that had to wait for their parent;
	// SpilledToDisk of them were kept by file position only.
	OutOfOrder, SpilledToDisk int64
	// Rejected lists blocks validation refused (and their descendants).
	Rejected []RejectedBlock
	// Undecodable counts complete records that were not blocks.
	Undecodable int64
	// Orphans lists blocks whose parent never appeared.
	Orphans []Orphan
	// Problems lists the stretches of files skipped; SkippedBytes is their
	// total, PaddingBytes the zero bytes ignored.
	Problems                   []Problem
	SkippedBytes, PaddingBytes int64
	// StartHeight is the active tip's height before; TipHeight/TipHash after.
	StartHeight, TipHeight int32
	TipHash                chainhash.Hash
	// Elapsed is the run's duration.
	Elapsed time.Duration
	// Interrupted is true when the run was stopped before the end.
	Interrupted bool
}

func (s *Summary) addRejected(r RejectedBlock) { s.Rejected = append(s.Rejected, r) }

// NothingImported reports a run that finished without importing a block
// and without finding any already imported: the files held nothing usable.
func (s *Summary) NothingImported() bool {
	return !s.Interrupted && s.Imported == 0 && s.AlreadyPresent == 0
}

// RejectReasons counts rejected blocks by rule.
func (s *Summary) RejectReasons() map[string]int {
	out := map[string]int{}
	for _, r := range s.Rejected {
		out[r.Reason]++
	}
	return out
}

// WriteText prints the summary for people.
func (s *Summary) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	done := 0
	for _, f := range s.Files {
		if f.Done {
			done++
		}
	}
	p("import summary")
	p("  files:           %d (%d bytes; %d read to the end; %d bytes read)", len(s.Files), s.BytesTotal, done, s.BytesRead)
	for _, f := range s.Files {
		p("    %s  %d bytes", f.Path, f.Size)
	}
	p("  blocks read:     %d", s.BlocksRead)
	p("  imported:        %d (validated and stored; %d of them on a side chain)", s.Imported, s.SideChain)
	p("  already present: %d (already in the block index with data: skipped)", s.AlreadyPresent)
	p("  genesis:         %d (built into the node: skipped)", s.Genesis)
	p("  duplicates:      %d (same block again in the files: ignored)", s.Duplicates)
	p("  out of order:    %d (held until their parent was imported; %d kept by file position and re-read)", s.OutOfOrder, s.SpilledToDisk)
	p("  rejected:        %d (refused by validation: not imported, marked invalid in the index where the rule allows; descendants counted as bad-prevblk, not submitted)", len(s.Rejected))
	reasons := s.RejectReasons()
	names := make([]string, 0, len(reasons))
	for r := range reasons {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		p("    %-28s %d", r, reasons[r])
	}
	for i, r := range s.Rejected {
		if i == maxListed {
			p("    ... and %d more", len(s.Rejected)-maxListed)
			break
		}
		p("    %s  %s @%d  %s: %s", r.Hash, r.Path, r.Offset, r.Reason, r.Detail)
	}
	p("  undecodable:     %d (complete records that are not blocks: skipped, rescanned from the byte after their magic)", s.Undecodable)
	what := "parent never appeared: not imported; add the file holding the parent and rerun"
	if s.Interrupted {
		what = "still waiting for their parent when interrupted: rerun to continue"
	}
	p("  orphans left:    %d (%s)", len(s.Orphans), what)
	for i, o := range s.Orphans {
		if i == maxListed {
			p("    ... and %d more", len(s.Orphans)-maxListed)
			break
		}
		p("    %s  parent %s  %s @%d", o.Hash, o.Parent, o.Path, o.Offset)
	}
	p("  bytes skipped:   %d in %d stretches (damaged or foreign data: skipped by scanning for the next network magic)", s.SkippedBytes, len(s.Problems))
	for i, pr := range s.Problems {
		if i == maxListed {
			p("    ... and %d more", len(s.Problems)-maxListed)
			break
		}
		p("    %-11s %s @%d  %d bytes: %s", pr.Kind, pr.Path, pr.Offset, pr.Length, pr.Detail)
	}
	p("  zero padding:    %d bytes (unused space at the end of blk files: ignored)", s.PaddingBytes)
	rate := float64(s.Imported) / max(s.Elapsed.Seconds(), 1e-9)
	p("  chain tip:       height %d (was %d), %s", s.TipHeight, s.StartHeight, s.TipHash)
	p("  elapsed:         %s (%.1f blocks/s imported)", s.Elapsed.Round(time.Millisecond), rate)
	switch {
	case s.Interrupted:
		p("  result:          interrupted; everything imported so far is kept: rerun the same command to continue")
	case s.NothingImported():
		p("  result:          nothing could be imported")
	default:
		p("  result:          done")
	}
}
