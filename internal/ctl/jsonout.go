package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// field is one key of an ordered JSON object.
type field struct {
	key string
	val any
}

// object is a JSON object that keeps its keys in insertion order, as
// Bitcoin Core's UniValue does.
type object []field

// add appends a key.
func (o *object) add(key string, val any) { *o = append(*o, field{key, val}) }

// get returns the value of key, or nil.
func (o object) get(key string) any {
	for _, f := range o {
		if f.key == key {
			return f.val
		}
	}
	return nil
}

// btc is an amount in satoshis, written as a JSON number in BTC with eight
// decimals (50.00000000), as Core writes amounts.
type btc int64

// rawNumber is a JSON number literal written as is.
type rawNumber string

// formatBTC renders satoshis as BTC with eight decimals.
func formatBTC(sats int64) string {
	sign := ""
	u := uint64(sats)
	if sats < 0 {
		sign = "-"
		u = uint64(-sats) // math.MinInt64 wraps to itself as uint64, which is its magnitude
	}
	return fmt.Sprintf("%s%d.%08d", sign, u/1e8, u%1e8)
}

// parseBTC parses a decimal BTC amount ("0.1", "1e-3" is refused) into
// satoshis exactly, as Core's AmountFromValue does for numbers with at most
// eight decimals.
func parseBTC(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty amount")
	}
	neg := false
	t := s
	if t[0] == '-' {
		neg = true
		t = t[1:]
	}
	intPart, frac, hasDot := strings.Cut(t, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	if len(frac) > 8 {
		return 0, fmt.Errorf("invalid amount %q: more than 8 decimals", s)
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid amount %q", s)
		}
	}
	var whole uint64
	if intPart != "" {
		w, err := strconv.ParseUint(intPart, 10, 64)
		if err != nil || w > 21e6 {
			return 0, fmt.Errorf("amount %q out of range", s)
		}
		whole = w
	}
	frac += strings.Repeat("0", 8-len(frac))
	f, err := strconv.ParseUint(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	v := int64(whole*1e8 + f)
	if neg {
		v = -v
	}
	return v, nil
}

// formatFloat writes a double as UniValue does (%.16g).
func formatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	return strconv.FormatFloat(f, 'g', 16, 64)
}

// writeJSON writes v compactly. Strings are escaped without HTML escaping.
func writeJSON(buf *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case string:
		return writeString(buf, x)
	case int:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case uint32:
		buf.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		buf.WriteString(strconv.FormatUint(x, 10))
	case float64:
		buf.WriteString(formatFloat(x))
	case btc:
		buf.WriteString(formatBTC(int64(x)))
	case rawNumber:
		buf.WriteString(string(x))
	case object:
		buf.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeString(buf, f.key); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeJSON(buf, f.val); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case []string:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeString(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		return fmt.Errorf("cannot write %T as JSON", v)
	}
	return nil
}

// writeString writes a JSON string literal.
func writeString(buf *bytes.Buffer, s string) error {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
	return nil
}

// printResult prints a result as bitcoin-cli does: null prints nothing,
// a string prints raw, anything else as JSON indented by two spaces.
func printResult(w io.Writer, v any) error {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		_, err := fmt.Fprintln(w, x)
		return err
	}
	var compact bytes.Buffer
	if err := writeJSON(&compact, v); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("indent result: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
