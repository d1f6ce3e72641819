package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Connect dials NATS at url with unlimited reconnects, naming the
// connection after the service and logging connection changes; extra
// options follow (InProcess for a server in this process).
func Connect(url, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Name("btcmesh-" + name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// StreamOptions tune the JetStream resources btcmesh creates.
type StreamOptions struct {
	// Replicas of streams and the block bucket (1 single node, 3 in a cluster).
	Replicas int
}

// EnsureBlockStream creates or updates the work-queue stream that carries
// block.received events until the blockvalidator acknowledges them.
func EnsureBlockStream(ctx context.Context, js jetstream.JetStream, s Subjects, o StreamOptions) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      s.BlockStream(),
		Subjects:  []string{s.BlockReceived()},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  max(o.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", s.BlockStream(), err)
	}
	return st, nil
}

// Publish marshals msg and publishes it on subject (core NATS).
func Publish(nc *nats.Conn, subject string, msg proto.Message) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", subject, err)
	}
	return nc.Publish(subject, data)
}

// PublishDurable marshals msg and publishes it through JetStream, returning
// once the stream has stored it.
func PublishDurable(ctx context.Context, js jetstream.JetStream, subject string, msg proto.Message) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", subject, err)
	}
	if _, err := js.Publish(ctx, subject, data); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	return nil
}

// ErrorHeader is the reply header a worker sets, with the reason, when it
// refuses a malformed request; Request turns it into an error.
const ErrorHeader = "Btcmesh-Error"

// ErrNoResponders means no worker is subscribed to a request subject.
var ErrNoResponders = errors.New("no workers are listening")

// Retry reasons passed to a RetryHook.
const (
	// RetryTimeout: the attempt got no reply within its timeout.
	RetryTimeout = "timeout"
	// RetryNoResponders: no worker was subscribed to the subject.
	RetryNoResponders = "no_responders"
	// RetryError: the attempt failed otherwise (connection trouble).
	RetryError = "error"
)

// RetryHook is told of each failed attempt of a request that Request will
// send again, with the subject and the reason (RetryTimeout,
// RetryNoResponders or RetryError); callers count retries with it.
type RetryHook func(subject, reason string)

// Request sends req on subject and decodes the reply into resp, retrying
// up to attempts times on timeout or when no worker answers, so that work
// lost with a dying worker is redone by another.
func Request(ctx context.Context, nc *nats.Conn, subject string, req, resp proto.Message, timeout time.Duration, attempts int) error {
	return RequestWithRetryHook(ctx, nc, subject, req, resp, timeout, attempts, nil)
}

// RequestWithRetryHook is Request that calls onRetry (when not nil) before
// each attempt after the first.
func RequestWithRetryHook(ctx context.Context, nc *nats.Conn, subject string, req, resp proto.Message, timeout time.Duration, attempts int, onRetry RetryHook) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("marshal request: %w", err)
	}
	var last error
	reason := ""
	for i := 0; i < max(attempts, 1); i++ {
		if i > 0 && onRetry != nil {
			onRetry(subject, reason)
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		msg, err := nc.RequestWithContext(rctx, subject, data)
		cancel()
		if err == nil {
			if refusal := msg.Header.Get(ErrorHeader); refusal != "" {
				return fmt.Errorf("request %s refused: %s", subject, refusal)
			}
			return proto.Unmarshal(msg.Data, resp)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, nats.ErrNoResponders) {
			last, reason = ErrNoResponders, RetryNoResponders
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		last, reason = err, RetryError
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			reason = RetryTimeout
		}
	}
	return fmt.Errorf("request %s: %w", subject, last)
}
