package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binPath is the btcmesh binary under test, built once by TestMain unless
// BTCMESH_BIN names one.
var binPath string

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	if p := os.Getenv("BTCMESH_BIN"); p != "" {
		binPath = p
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "btcmesh-bin")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "btcmesh")
	build := exec.Command("go", "build", "-o", binPath, "github.com/btcmesh/btcmesh/cmd/btcmesh")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build btcmesh: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// proc is a btcmesh process started by a test; it is stopped at cleanup
// and its log is printed when the test failed.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `btcmesh args...` and waits until grpcAddr reports SERVING.
func start(t *testing.T, name, grpcAddr string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(binPath, args...), log: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", name, tail(p.log.String(), 60))
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := exec.Command(binPath, "healthcheck", "--addr", grpcAddr, "--timeout", "2s").CombinedOutput()
		if err == nil {
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited while starting: %v\n%s", name, err, tail(p.log.String(), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving on %s: %s\n%s", name, grpcAddr, out, tail(p.log.String(), 40))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("%s exited uncleanly: %v", p.name, err)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%s did not stop within 30s", p.name)
	}
}

// wait waits for the process to exit by itself (after ctl stop).
func (p *proc) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("%s exited with %v", p.name, err)
		}
	case <-time.After(within):
		t.Fatalf("%s still running after %v", p.name, within)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// ctlClient runs `btcmesh ctl` with fixed connection flags.
type ctlClient struct {
	flags []string
}

// run returns stdout, stderr and whether the command succeeded.
func (c ctlClient) run(t *testing.T, args ...string) (string, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append(append([]string{"ctl"}, c.flags...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), err == nil
}

// ok runs a verb that must succeed and returns its output.
func (c ctlClient) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, ok := c.run(t, args...)
	if !ok {
		t.Fatalf("ctl %s failed: %s", strings.Join(args, " "), errOut)
	}
	return out
}

// fails runs a verb that must fail with stderr mentioning want.
func (c ctlClient) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, ok := c.run(t, args...)
	if ok {
		t.Fatalf("ctl %s succeeded (%s), want failure naming %q", strings.Join(args, " ")[:min(80, len(strings.Join(args, " ")))], out, want)
	}
	if !strings.Contains(errOut, want) {
		t.Fatalf("ctl %s: error %q does not name %q", args[0], errOut, want)
	}
}
