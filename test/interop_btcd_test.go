package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/rpcclient"

	"github.com/btcmesh/btcmesh/internal/testenv"
)

// btcdModule is the Go module the reference node is built from; its
// version is the one this module requires (go.mod).
const btcdModule = "github.com/btcsuite/btcd"

var (
	btcdOnce sync.Once
	btcdPath string
	btcdErr  error
)

// btcdVersion is the version of btcdModule this module requires (go.mod),
// so the reference node matches the libraries btcmesh is built with.
func btcdVersion() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", btcdModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", btcdModule, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// btcdBinary builds btcd once per test binary, cached under the system
// temp directory by version (BTCD_BIN names a prebuilt one instead).
func btcdBinary(t *testing.T) string {
	t.Helper()
	btcdOnce.Do(func() {
		if p := os.Getenv("BTCD_BIN"); p != "" {
			btcdPath = p
			return
		}
		ver, err := btcdVersion()
		if err != nil {
			btcdErr = err
			return
		}
		dir := filepath.Join(os.TempDir(), "btcmesh-interop-btcd-"+ver)
		btcdPath = filepath.Join(dir, "btcd")
		if st, err := os.Stat(btcdPath); err == nil && st.Mode().IsRegular() {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			btcdErr = err
			return
		}
		tmp := fmt.Sprintf("%s.%d", btcdPath, os.Getpid())
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", tmp, btcdModule)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			btcdErr = fmt.Errorf("build btcd %s: %v\n%s", ver, err, out)
			return
		}
		if err := os.Rename(tmp, btcdPath); err != nil {
			btcdErr = err
			return
		}
		t.Logf("built btcd %s in %s", ver, time.Since(start).Round(time.Second))
	})
	if btcdErr != nil {
		t.Fatal(btcdErr)
	}
	return btcdPath
}

// btcdNode is a btcd process on regtest, on loopback, driven over RPC.
type btcdNode struct {
	p2p, rpcAddr string
	datadir      string
	rpc          *rpcclient.Client
	cmd          *exec.Cmd
	log          *lockedBuffer
	done         chan error
}

// startBtcd runs btcd --regtest paying its generated blocks to miningAddr.
func startBtcd(t *testing.T, miningAddr string, extra ...string) *btcdNode {
	t.Helper()
	bin := btcdBinary(t)
	n := &btcdNode{p2p: testenv.FreeAddr(t), rpcAddr: testenv.FreeAddr(t), datadir: t.TempDir(), log: &lockedBuffer{}, done: make(chan error, 1)}
	args := []string{
		"--regtest", "--listen=" + n.p2p, "--rpclisten=" + n.rpcAddr,
		"--rpcuser=interop", "--rpcpass=interop", "--notls",
		"--datadir=" + filepath.Join(n.datadir, "data"), "--logdir=" + filepath.Join(n.datadir, "logs"),
		"--miningaddr=" + miningAddr, "--nodnsseed", "--nocfilters",
		"--trickleinterval=200ms", "--debuglevel=info",
	}
	n.cmd = exec.Command(bin, append(args, extra...)...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start btcd: %v", err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		if n.rpc != nil {
			n.rpc.Shutdown()
		}
		_ = n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			_ = n.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("---- log of btcd ----\n%s", tail(n.log.String(), 80))
		}
	})
	rpc, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: n.rpcAddr, User: "interop", Pass: "interop", HTTPPostMode: true, DisableTLS: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.rpc = rpc
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := rpc.GetBlockCount(); err == nil {
			return n
		} else if time.Now().After(deadline) {
			t.Fatalf("btcd RPC not answering: %v\n%s", err, tail(n.log.String(), 40))
		}
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("btcd exited while starting: %v\n%s", err, tail(n.log.String(), 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// generate mines n blocks on btcd.
func (n *btcdNode) generate(t *testing.T, count uint32) []*chainhash.Hash {
	t.Helper()
	hashes, err := n.rpc.Generate(count)
	if err != nil {
		t.Fatalf("btcd generate %d: %v", count, err)
	}
	return hashes
}

// best is btcd's tip hash.
func (n *btcdNode) best(t *testing.T) string {
	t.Helper()
	h, err := n.rpc.GetBestBlockHash()
	if err != nil {
		t.Fatalf("btcd getbestblockhash: %v", err)
	}
	return h.String()
}

// eventually polls cond every 200 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, within, strings.TrimSpace(state))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
