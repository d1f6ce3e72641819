package ctl

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// parseInt parses an integer argument named name within [lo, hi].
func parseInt(name, s string, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, argErr("Error parsing JSON: %s (%s must be an integer)", s, name)
	}
	if v < lo || v > hi {
		return 0, argErr("%s %d out of range [%d, %d]", name, v, lo, hi)
	}
	return v, nil
}

// parseInt32 parses an int32 argument.
func parseInt32(name, s string) (int32, error) {
	v, err := parseInt(name, s, math.MinInt32, math.MaxInt32)
	return int32(v), err
}

// parseBool parses a bool argument as bitcoin-cli does (true/false, and
// 1/0 for convenience).
func parseBool(name, s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, argErr("Error parsing JSON: %s (%s must be true or false)", s, name)
}

// parseHash is Core's ParseHashV: 64 hex digits, shown reversed.
func parseHash(name, s string) (chainhash.Hash, error) {
	if len(s) != 2*chainhash.HashSize {
		return chainhash.Hash{}, rpcErr(codeInvalidParameter, "%s must be of length 64 (not %d, for '%s')", name, len(s), s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return chainhash.Hash{}, rpcErr(codeInvalidParameter, "%s must be hexadecimal string (not '%s')", name, s)
	}
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		return chainhash.Hash{}, rpcErr(codeInvalidParameter, "%s must be hexadecimal string (not '%s')", name, s)
	}
	return *h, nil
}

// parseHex decodes a hex data argument; failures are reported with the
// decode-failed message the verb uses.
func parseHex(s string, failMsg string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, rpcErr(codeDeserialization, "%s", failMsg)
	}
	return b, nil
}
