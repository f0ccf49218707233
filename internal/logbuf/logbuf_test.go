package logbuf

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that counts its writes, safe for concurrent use.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) read() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

// Info lines wait for the interval and go out in one write; a warning goes
// out at once with the lines before it, in order.
func TestInfoWaitsWarningDoesNot(t *testing.T) {
	out := &syncBuffer{}
	w := NewWriter(out, DefaultLimit, time.Hour)
	defer w.Close()
	log := slog.New(NewHandler(slog.NewJSONHandler(w, nil), w)).With("component", "test")
	for i := range 100 {
		log.Info("request", "n", i)
	}
	if got, n := out.read(); got != "" || n != 0 {
		t.Fatalf("info lines written before the interval: %d writes", n)
	}
	log.Warn("something an operator must see")
	got, n := out.read()
	if n != 1 {
		t.Errorf("a warning after 100 info lines made %d writes; want 1", n)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 101 || !strings.Contains(lines[0], `"n":0`) || !strings.Contains(lines[100], "operator") {
		t.Errorf("after the warning: %d lines, first %q, last %q; want 101, in order", len(lines), lines[0], lines[len(lines)-1])
	}
	if !strings.Contains(lines[100], `"component":"test"`) {
		t.Errorf("the flushing handler lost its attributes: %q", lines[100])
	}
}

// The interval writes what is held; so does Close; the limit bounds what
// is held, and a line longer than the limit is written alone.
func TestIntervalLimitAndClose(t *testing.T) {
	out := &syncBuffer{}
	w := NewWriter(out, 1024, 20*time.Millisecond)
	fmt.Fprintln(w, "first")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, _ := out.read(); got == "first\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the interval did not write the held line")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.Close()

	out = &syncBuffer{}
	w = NewWriter(out, 1024, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	for range 25 { // 2,500 bytes: two writes at the limit, the rest held
		w.Write([]byte(line))
	}
	if got, n := out.read(); n != 2 || len(got) != 2000 {
		t.Errorf("with a 1 KiB limit, 25 lines of 100 B: %d writes of %d B; want 2 of 2000", n, len(got))
	}
	w.Write([]byte(strings.Repeat("y", 2000)))
	if got, n := out.read(); n != 4 || len(got) != 4500 {
		t.Errorf("a line over the limit: %d writes, %d B; want the held 500 B then the line (4 writes, 4500 B)", n, len(got))
	}
	w.Write([]byte("last\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := out.read(); !strings.HasSuffix(got, "last\n") {
		t.Error("Close did not write the held line")
	}
}

// Many goroutines logging at once: every line arrives whole.
func TestConcurrentLines(t *testing.T) {
	out := &syncBuffer{}
	w := NewWriter(out, 4096, time.Millisecond)
	log := slog.New(NewHandler(slog.NewJSONHandler(w, nil), w))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				log.InfoContext(context.Background(), "line", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	w.Close()
	got, _ := out.read()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines; want 4000", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") {
			t.Fatalf("a torn line: %q", l)
		}
	}
}
