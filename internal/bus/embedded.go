package bus

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream stored under
// dir/nats, listening on listen (HOST:PORT; port 0 picks a free one).
func StartEmbedded(dir, listen string) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "btcmesh-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dir, "nats"),
		MaxPayload: 8 << 20,
		NoSigs:     true,
		NoLog:      true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not become ready on %s", listen)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL of the embedded server.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// InProcess is the connection option that reaches this server through an
// in-memory pipe instead of its TCP listener (same protocol, no socket
// system calls); the server still listens for other processes.
func (e *Embedded) InProcess() nats.Option { return nats.InProcessServer(e.srv) }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
