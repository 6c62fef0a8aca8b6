package cli

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that the bar's goroutine may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestProgressItems: counted items are drawn at once and at each one,
// then erased.
func TestProgressItems(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, "syncing cohorts", 2, Items)
	p.Add(1)
	p.Add(1)
	p.Finish()
	want := "\r\x1b[Ksyncing cohorts ░░░░░░░░░░░░░░░░░░░░ 0/2" +
		"\r\x1b[Ksyncing cohorts ██████████░░░░░░░░░░ 1/2" +
		"\r\x1b[Ksyncing cohorts ████████████████████ 2/2" +
		"\r\x1b[K"
	if got := out.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestProgressBytes: bytes read through the bar are drawn as a share of
// the total with the rate, on a timer rather than at each read; without a
// total, as MiB read. Nothing is drawn once it is finished.
func TestProgressBytes(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, "evaluating", 4<<20, Bytes)
	if _, err := io.Copy(io.Discard, p.CountReads(strings.NewReader(strings.Repeat("x", 1<<20)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "evaluating █████░░░░░░░░░░░░░░░  25% (")
	p.Finish()
	end := out.String()
	if !strings.HasSuffix(end, "\r\x1b[K") || !strings.Contains(end, " MiB/s)") {
		t.Errorf("got %q: want the rate, and the line erased at the end", end)
	}
	time.Sleep(2 * drawEvery)
	if out.String() != end {
		t.Error("drawn after Finish")
	}

	var unknown syncBuffer
	p = NewProgress(&unknown, "evaluating", 0, Bytes)
	p.Add(3 << 19)
	waitFor(t, &unknown, "evaluating: 1.5 MiB read (")
	p.Finish()
}

func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("got %q, want %q in it", out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A nil bar (stderr is no terminal) does nothing, and reads go through.
func TestProgressNil(t *testing.T) {
	var p *Progress
	p.Add(1)
	r := strings.NewReader("abc")
	if p.CountReads(r) != io.Reader(r) {
		t.Error("CountReads of no bar wraps the reader")
	}
	p.Finish()
}
