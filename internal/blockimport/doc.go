// Package blockimport loads blocks from files in Bitcoin Core's blk*.dat /
// bootstrap.dat format (4-byte network magic, 4-byte little-endian length,
// serialized block, repeated; zero padding at the end of blk files) into a
// node through its normal validation pipeline: every block is submitted
// with BlockValidatorService.SubmitBlock, in an order where its parent is
// already known.
//
// Blocks whose parent has not been seen yet wait in a map keyed by the
// parent's hash, holding their bytes up to a memory budget and only their
// file position beyond it. Blocks the header index already holds (a rerun
// after an interrupt) are skipped after one HeaderService.GetHeader call.
// Damaged stretches of a file are skipped by scanning for the next magic,
// as Bitcoin Core does, and every problem is counted in the Summary.
package blockimport
