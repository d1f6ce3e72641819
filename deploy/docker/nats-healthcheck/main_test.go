package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.URL.Query().Get("js-enabled-only") != "true" {
			http.NotFound(w, r)
			return
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"unavailable","error":"JetStream not enabled"}`)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	url := srv.URL + "/healthz?js-enabled-only=true"
	if code := run([]string{"--url", url}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("healthy server: exit %d, want 0", code)
	}
	healthy.Store(false)
	if err := probe(url, time.Second); err == nil {
		t.Fatal("unhealthy server: probe succeeded")
	}
	if code := run([]string{"--url", url}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("unhealthy server: exit %d, want 1", code)
	}
	srv.Close()
	if code := run([]string{"--url", url, "--timeout", "500ms"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("stopped server: exit %d, want 1", code)
	}
}
