package utxostore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcmesh/btcmesh/internal/blockchanges"
)

const (
	crashDirEnv   = "BTCMESH_UTXOSTORE_CRASH_DIR"
	crashFlushEnv = "BTCMESH_UTXOSTORE_CRASH_FLUSH"
)

func crashChain(t testing.TB) []*wire.MsgBlock {
	return chainSpec(*regtest(t).Params.GenesisHash, 1, 40, 400, 0)
}

// TestCrashChild is the process TestCrashConsistency kills: it connects
// the crash chain from the store's tip as fast as it can, then waits.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashConsistency")
	}
	flush, err := time.ParseDuration(os.Getenv(crashFlushEnv))
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(storeOptions{dir: dir, cacheMB: 16, memTableMB: 64, flushEvery: flush, coinCacheMB: 8,
		genesis: *regtest(t).Params.GenesisHash}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	tip, err := st.tip()
	if err != nil {
		t.Fatal(err)
	}
	blocks := crashChain(t)
	for h := tip.height + 1; h <= int32(len(blocks)); h++ {
		if _, err := st.connect(blockchanges.Of(blocks[h-1]), h); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("connected %d\n", h)
	}
	fmt.Println("done")
	time.Sleep(time.Minute)
}

// TestCrashConsistency SIGKILLs a process in the middle of connecting
// blocks, reopens its store and checks that the tip and the set agree:
// the set equals one built by connecting exactly the blocks up to the
// recovered tip, and the persisted counters match a full scan.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	blocks := crashChain(t)
	genesis := *regtest(t).Params.GenesisHash
	ref, err := openStore(storeOptions{dir: t.TempDir(), cacheMB: 16, memTableMB: 64,
		genesis: genesis}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ref.close()
	refHeight := int32(0)

	last := int32(0)
	for round := 0; round < 4 && last < int32(len(blocks)); round++ {
		// Even rounds write every block (each connect is durable once it
		// returns); odd rounds keep blocks in memory between flushes every
		// 20 ms and run longer, so that the kill lands after some flushes
		// (it loses the blocks since the last one, whole).
		flush := time.Duration(round%2) * 20 * time.Millisecond
		killAfter := last + 2 + int32(round%2)*16
		crashOnce(t, dir, killAfter, flush, time.Duration(rand.IntN(15))*time.Millisecond)

		st, err := openStore(storeOptions{dir: dir, cacheMB: 16, memTableMB: 64, genesis: genesis}, discardLog())
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		tip, err := st.tip()
		if err != nil {
			t.Fatal(err)
		}
		if flush == 0 && tip.height < killAfter {
			t.Fatalf("round %d: recovered at height %d, but block %d had been connected", round, tip.height, killAfter)
		}
		if tip.height < last || tip.height > int32(len(blocks)) || (tip.height > 0 && tip.hash != blocks[tip.height-1].BlockHash()) {
			t.Fatalf("round %d: recovered tip %s/%d is not a block of the chain at or after %d", round, tip.hash, tip.height, last)
		}
		got, err := st.stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got.txouts != tip.txouts || got.totalAmount != tip.amount {
			t.Fatalf("round %d: counters %d/%d disagree with the set %d/%d", round, tip.txouts, tip.amount, got.txouts, got.totalAmount)
		}
		for ; refHeight < tip.height; refHeight++ {
			if _, err := ref.connect(blockchanges.Of(blocks[refHeight]), refHeight+1); err != nil {
				t.Fatal(err)
			}
		}
		want, err := ref.stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got.hashSerialized != want.hashSerialized || got.transactions != want.transactions {
			t.Fatalf("round %d: set at recovered height %d differs from a clean build", round, tip.height)
		}
		// The next block applies cleanly on the recovered state.
		if tip.height < int32(len(blocks)) {
			if _, err := st.connect(blockchanges.Of(blocks[tip.height]), tip.height+1); err != nil {
				t.Fatalf("connect after recovery: %v", err)
			}
			if _, err := st.disconnect(blocks[tip.height]); err != nil {
				t.Fatalf("disconnect after recovery: %v", err)
			}
		}
		if err := st.close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after block %d, recovered at height %d", round, killAfter, tip.height)
		last = tip.height
	}
}

// crashOnce runs TestCrashChild on dir and SIGKILLs it delay after it
// reports block killAfter.
func crashOnce(t *testing.T, dir string, killAfter int32, flush, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFlushEnv+"="+flush.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	want := fmt.Sprintf("connected %d", killAfter)
	seen := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == want || line == "done" {
			seen = true
			break
		}
	}
	if !seen {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child never reported %q; stderr: %s", want, stderr.String())
	}
	time.Sleep(delay)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(discardWriter{}) }()
	_ = cmd.Wait()
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
