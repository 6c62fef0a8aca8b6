package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func testStreams(in string) (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &IOStreams{In: bytes.NewBufferString(in), Out: &out, ErrOut: &errOut,
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
