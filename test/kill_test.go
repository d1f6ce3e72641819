package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// TestKilledImportResumes kills `btcmesh import` with SIGKILL part-way,
// while the UTXO store holds connected blocks in memory between flushes
// every 100 ms, runs it again to the end, and checks that the node then
// serves exactly the UTXO set of a clean import of the same file: a crash
// at any moment leaves the stores consistent and loses no block for good.
func TestKilledImportResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the btcmesh binary")
	}
	blocks := mineChain(t, 250)
	magic := chaincfg.RegressionNetParams.Net
	var f bytes.Buffer
	for _, b := range blocks[1:] { // genesis is every store's own
		writeRecord(t, &f, magic, serialize(t, b))
	}
	file := filepath.Join(t.TempDir(), "blk00000.dat")
	if err := os.WriteFile(file, f.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	killed := t.TempDir()
	cmd := exec.Command(binPath, "import", "--datadir", killed, "--import-progress-interval", "20ms",
		"--utxostore-flush-interval", "100ms", file)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	progressRE := regexp.MustCompile(`"msg":"import progress".*"imported":([0-9]+)`)
	began := time.Now()
	at := 0
	for at < 120 {
		select {
		case err := <-done:
			t.Fatalf("import ended before the kill (%v):\n%s", err, tail(stderr.String(), 20))
		case <-time.After(5 * time.Millisecond):
		}
		if m := progressRE.FindAllStringSubmatch(stderr.String(), -1); len(m) > 0 {
			at, _ = strconv.Atoi(m[len(m)-1][1])
		}
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("no progress after 2 minutes:\n%s", tail(stderr.String(), 20))
		}
	}
	_ = cmd.Process.Kill()
	<-done
	t.Logf("killed after %d blocks imported", at)

	runImport := func(datadir string) {
		t.Helper()
		if out, err := exec.Command(binPath, "import", "--datadir", datadir, file).CombinedOutput(); err != nil {
			t.Fatalf("import into %s: %v\n%s", datadir, err, tail(string(out), 20))
		}
	}
	runImport(killed)
	clean := t.TempDir()
	runImport(clean)

	setInfo := func(datadir string) map[string]any {
		t.Helper()
		grpcAddr := testenv.FreeAddr(t)
		node := start(t, "node on "+filepath.Base(datadir), grpcAddr, "node", "--datadir", datadir, "--grpc-listen", grpcAddr,
			"--metrics-listen", "", "--nats-listen", "127.0.0.1:0", "--p2p-listen", testenv.FreeAddr(t))
		defer node.stop(t)
		c := ctlClient{flags: []string{"--rpc", grpcAddr}}
		return decodeJSON[map[string]any](t, c.ok(t, "gettxoutsetinfo"))
	}
	got, want := setInfo(killed), setInfo(clean)
	for _, k := range []string{"height", "bestblock", "txouts", "total_amount", "hash_serialized_3"} {
		if got[k] != want[k] {
			t.Errorf("%s: %v after the kill and a rerun, %v from a clean import", k, got[k], want[k])
		}
	}
	if h, _ := got["height"].(float64); int(h) != len(blocks)-1 {
		t.Errorf("height %v, want %d", got["height"], len(blocks)-1)
	}
}
