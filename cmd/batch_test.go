package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flagkit/experiment/internal/cli"
)

func testStreams(in string) (*cli.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &cli.IOStreams{In: bytes.NewBufferString(in), Out: &out, ErrOut: &errOut,
		Getenv: func(string) string { return "" }}, &out, &errOut
}

// TestBatchConformance runs every conformance case through the real batch
// pipeline (all cores, chunks, ordered writer) and compares each output line
// with Amplitude's expected line.
func TestBatchConformance(t *testing.T) {
	cases, _ := filepath.Glob(filepath.Join("..", "testdata", "conformance", "cases", "*"))
	if len(cases) == 0 {
		t.Fatal("no conformance cases under testdata/")
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			args := []string{"evaluate", "--flags", filepath.Join(dir, "flags.json"), "--users", filepath.Join(dir, "users.jsonl"), "-o", "jsonl"}
			if _, err := os.Stat(filepath.Join(dir, "cohorts")); err == nil {
				args = append(args, "--cohorts", filepath.Join(dir, "cohorts"))
			}
			ios, out, errOut := testStreams("")
			if code := Main(context.Background(), args, ios); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := jsonLines(t, filepath.Join(dir, "expected.jsonl"))
			got := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
			if len(got) != len(want) {
				t.Fatalf("%d output lines, want %d", len(got), len(want))
			}
			for i := range want {
				var g any
				if err := json.Unmarshal(got[i], &g); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				if !reflect.DeepEqual(g, want[i]) {
					t.Errorf("line %d differs:\n got %s", i+1, got[i])
				}
			}
		})
	}
}

func jsonLines(t *testing.T, path string) []any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// wideFlags writes a flag config whose every user gets payloadBytes of
// payload from each of 8 flags, and, from flags d3 d2 d1 d0, the digits of
// its user_properties.n, so that the output says whose line it is.
func wideFlags(t *testing.T, payloadBytes int) string {
	t.Helper()
	var flags []any
	for i, pos := range []string{"^%d", "%d..$", "%d.$", "%d$"} {
		var segments []any
		variants := map[string]any{}
		for d := range 10 {
			k := strconv.Itoa(d)
			variants[k] = map[string]any{"key": k, "value": k}
			segments = append(segments, map[string]any{"variant": k, "conditions": [][]any{{map[string]any{
				"selector": []string{"context", "user", "user_properties", "n"}, "op": "regex match",
				"values": []string{fmt.Sprintf(pos, d)}}}}})
		}
		flags = append(flags, map[string]any{"key": fmt.Sprintf("d%d", 3-i), "variants": variants, "segments": segments})
	}
	payload := strings.Repeat("x", payloadBytes)
	for i := range 8 {
		flags = append(flags, map[string]any{"key": fmt.Sprintf("p%d", i),
			"variants": map[string]any{"on": map[string]any{"key": "on", "value": "on", "payload": payload}},
			"segments": []any{map[string]any{"variant": "on"}}})
	}
	data, err := json.Marshal(flags)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wide.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func numberedUsers(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"user_id":"u%d","user_properties":{"n":"%04d"}}`+"\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "users.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// orderedLines checks, as output streams through it, that line i is user
// i's: its flags d3 d2 d1 d0 spell i. Writes wait until open is closed.
type orderedLines struct {
	open    chan struct{}
	partial []byte
	lines   int
	err     error
}

func (o *orderedLines) Write(p []byte) (int, error) {
	<-o.open
	data := append(o.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		o.lines++
		if o.err == nil {
			var got []byte
			for _, flag := range []string{"d3", "d2", "d1", "d0"} {
				_, rest, ok := bytes.Cut(data[:i], []byte(`"`+flag+`":{"key":"`))
				if !ok || len(rest) == 0 {
					o.err = fmt.Errorf("line %d: no flag %s", o.lines, flag)
					break
				}
				got = append(got, rest[0])
			}
			if want := fmt.Sprintf("%04d", o.lines); o.err == nil && string(got) != want {
				o.err = fmt.Errorf("line %d is the output of user %s: order not kept", o.lines, got)
			}
		}
		data = data[i+1:]
	}
	o.partial = append(o.partial[:0], data...)
	return len(p), nil
}

// heapWhenStill returns the heap in use once it stops changing: the batch
// has done all it can while its output is not being read.
func heapWhenStill(t *testing.T) uint64 {
	t.Helper()
	var last uint64
	still := 0
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if diff := int64(ms.HeapAlloc) - int64(last); diff > -1<<20 && diff < 1<<20 {
			if still++; still == 6 {
				return ms.HeapAlloc
			}
		} else {
			still = 0
		}
		last = ms.HeapAlloc
	}
	t.Fatal("the heap never stopped changing while the output was not read")
	return 0
}

// TestBatchOutputBudget: while stdout is not read, the output the batch
// holds is bounded by bytes, whatever the core count: with 16 cores and
// users of 100 kB of output each, it once held 32 chunks of 64 users
// (200 MB). Then, read, every line comes out, in order.
func TestBatchOutputBudget(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	flags, users := wideFlags(t, 12<<10), numberedUsers(t, 2500)
	out := &orderedLines{open: make(chan struct{})}
	ios, _, errOut := testStreams("")
	ios.Out = out
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	exit := make(chan int, 1)
	go func() {
		exit <- Main(context.Background(), []string{"evaluate", "--flags", flags, "--users", users, "-o", "jsonl"}, ios)
	}()
	held := int64(heapWhenStill(t)) - int64(before.HeapAlloc)
	close(out.open)
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out.err != nil || out.lines != 2500 {
		t.Fatalf("%d lines: %v", out.lines, out.err)
	}
	if held > 96<<20 {
		t.Fatalf("held %d MB while its output was not read, want about the output budget, %d MB", held>>20, outputBytes>>20)
	}
	t.Logf("held %.1f MB while its output was not read", float64(held)/(1<<20))
}

// TestBatchUserBiggerThanBudget: a user whose output alone is more than
// the whole output budget still goes through, and the users around it.
func TestBatchUserBiggerThanBudget(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	flags, users := wideFlags(t, outputBytes/6), numberedUsers(t, 3)
	out := &orderedLines{open: make(chan struct{})}
	close(out.open)
	ios, _, errOut := testStreams("")
	ios.Out = out
	if code := Main(context.Background(), []string{"evaluate", "--flags", flags, "--users", users, "-o", "jsonl"}, ios); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out.err != nil || out.lines != 3 {
		t.Fatalf("%d lines: %v", out.lines, out.err)
	}
}

// failingReader gives its data, then a read error, as a disk or a network
// file system can.
type failingReader struct{ data *strings.Reader }

func (r failingReader) Read(p []byte) (int, error) {
	if r.data.Len() == 0 {
		return 0, fmt.Errorf("input/output error")
	}
	return r.data.Read(p)
}

// A read error at line N is reported after every line before it was
// written: the chunk being gathered when it happened included.
func TestBatchReadErrorKeepsEarlierLines(t *testing.T) {
	var users strings.Builder
	for i := range 10 {
		fmt.Fprintf(&users, "{\"user_id\":\"u%d\"}\n", i)
	}
	ios, out, errOut := testStreams("")
	ios.In = failingReader{strings.NewReader(users.String())}
	code := Main(context.Background(), []string{"evaluate", "--flags", filepath.Join("..", "testdata", "flags.json"),
		"--cohorts", filepath.Join("..", "testdata", "cohorts"), "--users", "-", "-o", "jsonl", "dark-mode"}, ios)
	if code != ExitIO {
		t.Fatalf("exit %d, want %d; stderr: %s", code, ExitIO, errOut)
	}
	if n := strings.Count(out.String(), "\n"); n != 10 {
		t.Errorf("%d lines written before the error, want 10", n)
	}
	if !strings.Contains(errOut.String(), "stdin: line 11: input/output error") {
		t.Errorf("stderr %q: want the line and the error", errOut)
	}
}
