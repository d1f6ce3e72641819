package runner

import "sync"

// ReadySignal is a close-once readiness channel for a Module's Ready.
type ReadySignal struct {
	once sync.Once
	ch   chan struct{}
}

// NewReadySignal returns an unset signal.
func NewReadySignal() *ReadySignal { return &ReadySignal{ch: make(chan struct{})} }

// Set marks the module ready; later calls do nothing.
func (r *ReadySignal) Set() { r.once.Do(func() { close(r.ch) }) }

// C is closed once Set was called.
func (r *ReadySignal) C() <-chan struct{} { return r.ch }
