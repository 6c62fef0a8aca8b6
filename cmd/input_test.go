package cmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLineReader checks how JSON Lines input is split: line ends, the last
// line without one, and the limit, which is on the line without its end.
func TestLineReader(t *testing.T) {
	type step struct {
		line    string
		tooLong bool
	}
	for _, tc := range []struct {
		name, in string
		want     []step
	}{
		{"ends", "a\nb\r\n\nc", []step{{line: "a"}, {line: "b"}, {line: ""}, {line: "c"}}},
		{"newline at the end", "a\n", []step{{line: "a"}}},
		{"empty", "", nil},
		{"exactly the limit", "12345678\n12345678\r\n12345678", []step{{line: "12345678"}, {line: "12345678"}, {line: "12345678"}}},
		{"one over, then more", "123456789\nok\n", []step{{tooLong: true}, {line: "ok"}}},
		{"long last line", "ok\n" + strings.Repeat("x", 100), []step{{line: "ok"}, {tooLong: true}}},
		{"long line ended by newline", "ok\n" + strings.Repeat("x", 100) + "\nafter", []step{{line: "ok"}, {tooLong: true}, {line: "after"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(tc.in))
			lr.limit = 8
			for i, want := range tc.want {
				got, err := lr.next()
				switch {
				case want.tooLong && !errors.Is(err, errLineTooLong):
					t.Fatalf("line %d: %q, %v; want errLineTooLong", i+1, got, err)
				case !want.tooLong && (err != nil || string(got) != want.line):
					t.Fatalf("line %d: %q, %v; want %q", i+1, got, err, want.line)
				case lr.line != i+1:
					t.Fatalf("line %d: numbered %d", i+1, lr.line)
				}
			}
			if got, err := lr.next(); err != io.EOF {
				t.Fatalf("after the last line: %q, %v; want io.EOF", got, err)
			}
			if _, err := lr.next(); err != io.EOF {
				t.Fatalf("io.EOF is not repeated: %v", err)
			}
		})
	}
}

// endless is a line that never ends; it counts what was read of it.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.read += len(p)
	return len(p), nil
}

// TestLineReaderReportsAtTheLimit: a line that never ends is reported once
// the limit is passed, after reading about the limit, not the whole line;
// skipping it keeps reading until the context ends.
func TestLineReaderReportsAtTheLimit(t *testing.T) {
	src := &endless{}
	ctx, cancel := context.WithCancel(context.Background())
	lr := newLineReader(newCancelReader(ctx, src))
	lr.limit = 1 << 20
	if _, err := lr.next(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("got %v, want errLineTooLong", err)
	}
	if src.read > lr.limit+2*maxReadSize {
		t.Fatalf("read %d bytes to find a line longer than %d", src.read, lr.limit)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := lr.next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("skipping a line that never ends: %v, want context.Canceled", err)
	}
}

// blocked is a reader whose Read waits for release, as stdin waits for a
// stalled producer.
type blocked struct {
	release chan struct{}
	data    string
}

func (b *blocked) Read(p []byte) (int, error) {
	<-b.release
	return copy(p, b.data), io.EOF
}

func TestCancelReaderStopsAtCancel(t *testing.T) {
	src := &blocked{release: make(chan struct{}), data: "late"}
	ctx, cancel := context.WithCancel(context.Background())
	r := newCancelReader(ctx, src)
	done := make(chan error, 1)
	buf := make([]byte, 16)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after cancel")
	}
	// The late read lands in the reader's own buffer, not in buf, which
	// the caller owns again once Read has returned.
	close(src.release)
	time.Sleep(10 * time.Millisecond)
	if !bytes.Equal(buf, make([]byte, 16)) {
		t.Fatalf("caller's buffer written after cancel: %q", buf)
	}
	if _, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read once cancelled: %v", err)
	}
}

// script is a reader that returns its parts one Read at a time, as a
// terminal returns what was typed before each Ctrl-D.
type script struct{ parts []string }

func (s *script) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	part := s.parts[0]
	if part == "" {
		s.parts = s.parts[1:]
		return 0, io.EOF
	}
	n := copy(p, part)
	if s.parts[0] = part[n:]; s.parts[0] == "" {
		s.parts = s.parts[1:]
	}
	return n, nil
}

func TestCancelReaderSmallReadsAndEOF(t *testing.T) {
	src := &script{parts: []string{"hello world", "", "after the end"}}
	r := newCancelReader(context.Background(), src)
	var got []byte
	buf := make([]byte, 3) // smaller than what the source has at once
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "hello world" {
		t.Fatalf("read %q", got)
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read past the end: %d, %v", n, err)
	}
	if len(src.parts) != 1 {
		t.Fatalf("the source was read after its end")
	}
}
