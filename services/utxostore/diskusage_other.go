//go:build !unix

package utxostore

import "io/fs"

// allocatedBytes is the file's size where allocation is not reported.
func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }
