// Command ratios reads `go test -bench` output of this module (several
// rounds appended in one file) and prints the medians of the official SDK
// and ours side by side with their ratio, as Markdown tables.
//
//	ratios bench.txt
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// series is each benchmark line's figures by unit (sec/op, allocs/op, B/flag).
type series map[string][]float64

// row is a benchmark without its impl: Evaluate/flags=100.
type row struct {
	name  string
	impls map[string]series
}

var gomaxprocs = regexp.MustCompile(`-\d+$`)

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) == 2 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "ratios:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	rows, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
	printTables(os.Stdout, rows)
}

func parse(r io.Reader) ([]*row, error) {
	var rows []*row
	byName := map[string]*row{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name, impl := splitImpl(gomaxprocs.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), ""))
		rw := byName[name]
		if rw == nil {
			rw = &row{name: name, impls: map[string]series{}}
			byName[name] = rw
			rows = append(rows, rw)
		}
		if rw.impls[impl] == nil {
			rw.impls[impl] = series{}
		}
		for i := 2; i+1 < len(fields); i += 2 { // after the name and the iteration count: value unit pairs
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", fields[0], fields[i])
			}
			rw.impls[impl][fields[i+1]] = append(rw.impls[impl][fields[i+1]], v)
		}
	}
	return rows, sc.Err()
}

// splitImpl takes the impl=X element out of a benchmark name.
func splitImpl(name string) (string, string) {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if impl, ok := strings.CutPrefix(p, "impl="); ok {
			return strings.Join(slices.Delete(parts, i, i+1), "/"), impl
		}
	}
	return name, ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func printTables(w io.Writer, rows []*row) {
	fmt.Fprintln(w, "| benchmark | official | ours | official / ours | official allocs | our allocs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		off, ours := r.impls["official"], r.impls["ours"]
		if off == nil || ours == nil {
			continue
		}
		t0, t1 := median(off["ns/op"]), median(ours["ns/op"])
		fmt.Fprintf(w, "| %s | %s | %s | %.1fx | %.0f | %.0f |\n", r.name, duration(t0), duration(t1), t0/t1,
			median(off["allocs/op"]), median(ours["allocs/op"]))
		// The public API beside the engine: what a service calling
		// EvaluateV2 instead of the official SDK's gains.
		if v := r.impls["ours-evaluatev2"]; v != nil {
			t2 := median(v["ns/op"])
			fmt.Fprintf(w, "| %s, our EvaluateV2 | %s | %s | %.1fx | %.0f | %.0f |\n", r.name, duration(t0), duration(t2), t0/t2,
				median(off["allocs/op"]), median(v["allocs/op"]))
		}
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		off, ours := r.impls["official"], r.impls["ours"]
		if off == nil || ours == nil || off["B/flag"] == nil {
			continue
		}
		fmt.Fprintf(w, "- %s held per flag: official %.0f B, ours %.0f B", r.name, median(off["B/flag"]), median(ours["B/flag"]))
		if c := r.impls["ours-compile"]; c != nil {
			fmt.Fprintf(w, "; ours-compile %s, %.0f B", duration(median(c["ns/op"])), median(c["B/flag"]))
		}
		if f := r.impls["fetch"]; f != nil {
			fmt.Fprintf(w, "; the fetch alone %s", duration(median(f["ns/op"])))
		}
		fmt.Fprintln(w)
	}
	scaling(w, rows)
}

// scaling says what 10,000 flags cost against 1,000, for each engine.
func scaling(w io.Writer, rows []*row) {
	find := func(name string) *row {
		for _, r := range rows {
			if r.name == name {
				return r
			}
		}
		return nil
	}
	small, large := find("Evaluate/flags=1000"), find("Evaluate/flags=10000")
	if small == nil || large == nil {
		return
	}
	for _, impl := range []string{"official", "ours"} {
		if small.impls[impl] != nil && large.impls[impl] != nil {
			fmt.Fprintf(w, "- Evaluate, %s: 10,000 flags cost %.1fx 1,000 flags\n", impl,
				median(large.impls[impl]["ns/op"])/median(small.impls[impl]["ns/op"]))
		}
	}
}

func duration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	}
	return fmt.Sprintf("%.3g ns", ns)
}
