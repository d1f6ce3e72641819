package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestEnvironmentFillsUnsetFlagsOnly(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.String("data-dir", "", "")
	b := fs.String("network", "regtest", "")
	var peers StringList
	fs.Var(&peers, "connect", "")
	t.Setenv("BTCMESH_DATA_DIR", "/env")
	t.Setenv("BTCMESH_NETWORK", "mainnet")
	t.Setenv("BTCMESH_CONNECT", "a:1, b:2")
	if err := Parse(fs, []string{"--network", "signet"}); err != nil {
		t.Fatal(err)
	}
	if *a != "/env" || *b != "signet" || strings.Join(peers, "|") != "a:1|b:2" {
		t.Fatalf("got %q %q %q", *a, *b, peers)
	}
}

func TestBadEnvironmentValueNamesTheFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("max-peers", 8, "")
	t.Setenv("BTCMESH_MAX_PEERS", "many")
	err := Parse(fs, nil)
	if err == nil || !strings.Contains(err.Error(), "--max-peers") {
		t.Fatalf("want an error naming --max-peers, got %v", err)
	}
	if CheckHostPort("grpc-listen", "nonsense") == nil {
		t.Fatal("want HOST:PORT error")
	}
}
