package coin

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, c := range []Coin{
		{Height: 0, Amount: 0, Script: nil},
		{Height: 1<<31 - 1, Coinbase: true, Amount: 21e14, Script: bytes.Repeat([]byte{7}, 10000)},
	} {
		b := Append([]byte{9}, c)[1:]
		got, n, err := Decode(b)
		if err != nil || n != len(b) || got.Height != c.Height || got.Coinbase != c.Coinbase ||
			got.Amount != c.Amount || !bytes.Equal(got.Script, c.Script) {
			t.Fatalf("round trip of %+v: %+v n=%d err=%v", c, got, n, err)
		}
		if _, _, err := Decode(b[:n-1]); len(c.Script) > 0 && err == nil {
			t.Fatal("truncated coin must not decode")
		}
	}
}
