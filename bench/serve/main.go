// Command serve is scripts/bench-serve.sh's helper: a trivial HTTP server
// for the baseline, and a stream fan-out harness that opens N SSE clients
// on `experiment serve`, edits the --flags file and times the change to
// the first and the last client.
//
//	go run ./bench/serve hello -listen 127.0.0.1:23547
//	go run ./bench/serve stream -addr 127.0.0.1:23546 -flags FILE -n 10000
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: serve hello|stream [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "hello":
		err = hello(os.Args[2:])
	case "stream":
		err = stream(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// hello answers every request with a 15-byte JSON body: what net/http
// alone costs, the ceiling any handler is measured against.
func hello(args []string) error {
	fs := flag.NewFlagSet("hello", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:23547", "address")
	fs.Parse(args)
	body := []byte(`{"status":"ok"}`)
	return http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
}

// stream opens n clients, waits until each has its first event, rewrites
// the flags file with one flag changed, and reports when the first and the
// last client had the new flags.
func stream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:23546", "server address")
	file := fs.String("flags", "", "the server's --flags file, edited to make the change")
	n := fs.Int("n", 10000, "stream clients")
	dialers := fs.Int("dialers", 64, "connections opened at once (the accept queue is finite)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for every client")
	fs.Parse(args)
	edited, err := editedFlags(*file)
	if err != nil {
		return err
	}
	var (
		ready, got sync.WaitGroup
		failed     atomic.Int64
		arrivals   = make([]time.Time, *n)
		sem        = make(chan struct{}, *dialers)
	)
	ready.Add(*n)
	got.Add(*n)
	start := time.Now()
	for i := range *n {
		sem <- struct{}{}
		go func() {
			c := &client{ready: &ready, release: sem}
			t, err := c.run(*addr)
			if err != nil {
				failed.Add(1)
				if failed.Load() == 1 {
					fmt.Fprintln(os.Stderr, "serve: client:", err)
				}
			}
			arrivals[i] = t
			got.Done()
		}()
	}
	if !wait(&ready, *timeout) {
		return fmt.Errorf("%d clients not connected within %v", *n, *timeout)
	}
	fmt.Printf("stream: %d clients connected in %.2f s (%d failed)\n", *n, time.Since(start).Seconds(), failed.Load())
	time.Sleep(time.Second) // let the accepts settle before the clock starts
	wrote := time.Now()
	if err := os.WriteFile(*file, edited, 0o644); err != nil {
		return err
	}
	if !wait(&got, *timeout) {
		return fmt.Errorf("not every client had the change within %v", *timeout)
	}
	return report(wrote, arrivals, failed.Load())
}

// editedFlags is the file with a field added to its first flag: a change
// the server serves (its body and ETag change) without changing any
// evaluation.
func editedFlags(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var flags []map[string]any
	if err := json.Unmarshal(data, &flags); err != nil || len(flags) == 0 {
		return nil, fmt.Errorf("%s: want a non-empty JSON array of flags (%v)", name, err)
	}
	flags[0]["benchEdit"] = time.Now().UnixNano()
	return json.Marshal(flags)
}

func report(wrote time.Time, arrivals []time.Time, failed int64) error {
	var ds []time.Duration
	for _, t := range arrivals {
		if !t.IsZero() {
			ds = append(ds, t.Sub(wrote))
		}
	}
	if len(ds) == 0 {
		return errors.New("no client had the change")
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Printf("stream: %d clients had the change (%d failed): from the write, first %.0f ms, median %.0f ms, last %.0f ms; fan-out (first to last) %.0f ms\n",
		len(ds), failed, ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), ms(ds[len(ds)-1]-ds[0]))
	return nil
}

func wait(wg *sync.WaitGroup, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// client is one SSE connection, spoken by hand: a net/http client per
// connection would cost the harness more than the server it measures.
type client struct {
	ready   *sync.WaitGroup
	release chan struct{} // a dialer slot, freed once connected
}

// run connects, reads the first event (the flags), then returns the time
// the next flags event ended. Keep-alives (data of one space) are skipped.
func (c *client) run(addr string) (time.Time, error) {
	connected := false
	defer func() {
		if !connected {
			<-c.release
			c.ready.Done()
		}
	}()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /sdk/stream/v1/flags HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr)
	br := bufio.NewReaderSize(conn, 4<<10) // small: 10,000 of them; a longer line is skipped
	if err := skipHeaders(br); err != nil {
		return time.Time{}, err
	}
	if _, err := nextFlags(br); err != nil {
		return time.Time{}, err
	}
	connected = true
	<-c.release
	c.ready.Done()
	return nextFlags(br)
}

func skipHeaders(br *bufio.Reader) error {
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !bytes.Contains([]byte(status), []byte(" 200 ")) {
		return fmt.Errorf("status %q", status)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// nextFlags reads chunked SSE bytes until an event other than a
// keep-alive ends, and returns when. The chunk framing is not parsed: an
// event's end is the blank line after a data line, and keep-alives are
// told apart by their data (one space).
func nextFlags(br *bufio.Reader) (time.Time, error) {
	flags := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			flags = true // a long data line: the flags
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return time.Time{}, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("data: ")) && !bytes.Equal(line, []byte("data:  \n")):
			flags = true
		case bytes.Equal(line, []byte("\n")) && flags:
			return time.Now(), nil
		}
	}
}
