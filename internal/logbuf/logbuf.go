// Package logbuf batches the writes of a log stream. A busy server logs a
// line per request; written one by one, each line is a write(2), a cost
// comparable to serving a small request. Lines are held in memory for at
// most an interval, or until the buffer fills, and written together. A
// record at Warn or above is written at once, with every line before it, so
// what an operator must see is never late and the order is kept.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of NewWriter.
const (
	DefaultLimit = 64 << 10
	DefaultEvery = 100 * time.Millisecond
)

// Writer holds what is written until Flush, the next interval, or the
// buffer's limit. It is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	limit int

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewWriter returns a Writer on w that flushes at least every interval and
// whenever limit bytes are held; Close flushes and stops it.
func NewWriter(w io.Writer, limit int, every time.Duration) *Writer {
	b := &Writer{w: w, limit: limit, buf: make([]byte, 0, limit), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run(every)
	return b
}

func (b *Writer) run(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}

// Write holds p; it writes what is held first when p would pass the limit,
// and p itself at once when p alone passes it.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > b.limit {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > b.limit {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what is held.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *Writer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0] // a failed write is not retried: the stream is gone
	return err
}

// Close stops the interval and writes what is held. Writes after Close go
// to the buffer and out with the next Flush.
func (b *Writer) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	return b.Flush()
}

// Handler is a slog.Handler writing to a Writer that flushes it after every
// record at Warn or above.
type Handler struct {
	slog.Handler
	w *Writer
}

// NewHandler wraps h, which writes to w.
func NewHandler(h slog.Handler, w *Writer) *Handler { return &Handler{Handler: h, w: w} }

// Handle handles r, and flushes when r is a warning or an error.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs keeps the flushing.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

// WithGroup keeps the flushing.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{Handler: h.Handler.WithGroup(name), w: h.w}
}
