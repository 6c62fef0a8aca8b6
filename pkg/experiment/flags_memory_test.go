package experiment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/eval"
)

// A large flag config response must cost its decoded form and, for the
// cache, one copy of its bytes: not the 7x of reading it whole, decoding
// it, then marshalling it again for the cache (1.9 GB for 250 MB).

// bigFlagConfig is the bench flag set repeated to about size bytes, and
// how many flags it holds. Keys repeat: what is measured here decodes and
// checks flags, it does not compile them.
func bigFlagConfig(t testing.TB, size int) ([]byte, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", "flags-1000.json"))
	require.NoError(t, err)
	inner := bytes.TrimSpace(data)
	inner = inner[1 : len(inner)-1] // the flags, without the brackets
	var b bytes.Buffer
	b.Grow(size + len(data))
	b.WriteString("[")
	copies := 0
	for b.Len() < size {
		if copies > 0 {
			b.WriteString(",")
		}
		b.Write(inner)
		copies++
	}
	b.WriteString("]\n")
	return b.Bytes(), copies * 1000
}

// testSize is size, or a quarter of it under the race detector, which
// makes decoding many times slower.
func testSize(size int) int {
	if raceEnabled {
		return size / 4
	}
	return size
}

// allocated is the bytes f allocates (all of them, garbage included).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Writing the cache streams the kept bytes into the file: it allocates a
// buffer, not a copy of the flags (json.Marshal made two, and garbage).
func TestFlagCacheWriteAllocatesNoCopy(t *testing.T) {
	body, _ := bigFlagConfig(t, testSize(16<<20))
	fc, err := decodeFlagConfigs(bytes.NewReader(body), nil, time.Now())
	require.NoError(t, err)
	keep := newSpool(-1)
	keep.Write(body)
	fc.raw = keep
	path := filepath.Join(t.TempDir(), "flags", "x.json")
	var werr error
	n := allocated(func() { werr = writeFlagCache(path, fc, "https://example.com") })
	require.NoError(t, werr)
	assert.Less(t, n, uint64(1<<20), "writing a %d MiB cache allocated %d bytes", len(body)>>20, n)

	back, err := readFlagCache(path)
	require.NoError(t, err)
	assert.Equal(t, 1000, back.snap.Len(), "the flags of flags-1000.json, repeated")
	assert.Equal(t, fc.digest, back.digest, "the cache holds the exact bytes")
}

// Decoding a response as it streams, keeping its bytes for the cache,
// allocates what decoding the flags costs anyway plus about one copy of
// the response: no io.ReadAll whose doubling leaves the size again behind.
func TestFlagResponseDecodeAllocations(t *testing.T) {
	body, nflags := bigFlagConfig(t, testSize(16<<20))
	// The floor is the decoder the client streams through: DecodeFlags,
	// which holds the whole body, has a decoder of its own.
	floor := allocated(func() {
		_, err := eval.DecodeFlagsStream(bytes.NewReader(body), func(*eval.Flag) error { return nil })
		require.NoError(t, err)
	})
	var fc *flagConfigs
	n := allocated(func() {
		keep := newSpool(-1)
		var err error
		fc, err = decodeFlagConfigs(bytes.NewReader(body), keep, time.Now())
		require.NoError(t, err)
		fc.raw = keep
	})
	require.Len(t, fc.flags, nflags)
	extra := int64(n) - int64(floor)
	t.Logf("response %d MiB: decoding alone %d MiB, with hashing and keeping the bytes %d MiB", len(body)>>20, floor>>20, n>>20)
	assert.Less(t, extra, int64(len(body))*5/4, "beyond decoding, %d bytes allocated for a %d-byte response", extra, len(body))
}

// heapPeak samples the live heap until stop, and returns how far it rose
// above where it was at the start.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return max(peak.Load(), base) - base
	}
}

// A pull streams the response to the cache file, checking each flag on the
// way: the heap stays far below the response's size, however large.
func TestPullFlagConfigsHeapStaysFlat(t *testing.T) {
	if raceEnabled {
		t.Skip("the heap is measured without the race detector's shadow memory and slowness")
	}
	body, nflags := bigFlagConfig(t, 32<<20)
	const key = "server-memory-test-key"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Api-Key "+key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	c, err := NewLocalClient(key, &LocalConfig{ServerURL: srv.URL, CacheDir: dir, FlagConfigPollerRequestTimeout: 5 * time.Minute, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer c.Close()

	// The collector may let garbage reach the size of the live heap (which
	// holds the test server's copy of the response) before it runs: kept
	// short, it lets the peak show what the pull holds, not what it threw
	// away.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	stop := heapPeak(t)
	var out bytes.Buffer
	n, err := c.PullFlagConfigs(context.Background(), io.Discard)
	rise := stop()
	require.NoError(t, err)
	assert.Equal(t, nflags, n)
	t.Logf("pull of %d MiB: heap rose %d MiB at most", len(body)>>20, rise>>20)
	assert.Less(t, rise, uint64(len(body)/4), "a pull of %d MiB held %d MiB", len(body)>>20, rise>>20)

	// What reaches out is the response, byte for byte, read from the cache.
	_, err = c.PullFlagConfigs(context.Background(), &out)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, out.Bytes()), "--out differs from the response")
	fc, err := readFlagCache(FlagCachePath(dir, key))
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256(body), fc.digest, "the cache holds the response")
}

// heapRise starts a client on body, served with its Content-Length or
// chunked (of unknown length, as a gzipped response is), then has it poll
// the same body, then an update (the same flags, spaced otherwise). It
// returns how far the heap rose above what it held before Start while
// Start ran, what the started client holds, and how far the heap rose
// above that during the poll and during the update.
func heapRise(t *testing.T, body []byte, chunked, cache bool) (start, held, unchanged, update uint64) {
	t.Helper()
	const key = "server-memory-test-key"
	var served atomic.Pointer[[]byte]
	served.Store(&body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := *served.Load()
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 1<<20)
			w.Write(rest[:n])
			rest = rest[n:]
			if chunked {
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	updated := make(chan struct{}, 2)
	// Polled each second: the measurements after Start come before the
	// first poll, which fetches the update.
	cfg := &LocalConfig{ServerURL: srv.URL, FlagConfigPollingInterval: time.Second, StartTimeout: 5 * time.Minute,
		FlagConfigPollerRequestTimeout: 5 * time.Minute, Logger: slog.New(slog.DiscardHandler),
		OnUpdate: func(_, _ *FlagSet) { updated <- struct{}{} }}
	if cache {
		cfg.CacheDir = t.TempDir()
	}
	c, err := NewLocalClient(key, cfg)
	require.NoError(t, err)
	defer c.Close()
	next := append(bytes.Clone(body), ' ')
	defer debug.SetGCPercent(debug.SetGCPercent(5)) // see TestPullFlagConfigsHeapStaysFlat
	base := liveHeapBytes()
	stop := heapPeak(t)
	err = c.Start(context.Background())
	start = stop()
	require.NoError(t, err)
	<-updated // Start's
	held = liveHeapBytes() - base
	stop = heapPeak(t)
	for was := c.Status().LastSuccess; !c.Status().LastSuccess.After(was); {
		time.Sleep(10 * time.Millisecond) // a poll that finds the flags in use calls nothing
	}
	unchanged = stop()
	stop = heapPeak(t)
	served.Store(&next)
	<-updated
	update = stop()
	return start, held, unchanged, update
}

func liveHeapBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Starting on a large config holds its bytes once, in the flag set; while
// it loads, their decoded form too: never the body twice beside that. An
// update holds the flags in use, and loads the new ones so. (The flags
// repeat the keys of 1,000: the set compiles those, and keeps the whole
// document.)
func TestLocalHeapPeak(t *testing.T) {
	if raceEnabled {
		t.Skip("the heap is measured without the race detector's shadow memory and slowness")
	}
	body, _ := bigFlagConfig(t, 32<<20)
	for _, tc := range []struct {
		name           string
		chunked, cache bool
	}{{"length", false, false}, {"chunked", true, false}, {"chunked+cache", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			start, held, unchanged, update := heapRise(t, body, tc.chunked, tc.cache)
			t.Logf("%d MiB of flags: Start's heap rose %d MiB at most, %d MiB held after; above that, a poll of the same flags rose %d MiB, an update %d MiB",
				len(body)>>20, start>>20, held>>20, unchanged>>20, update>>20)
			assert.Less(t, unchanged, uint64(len(body))*5/2, "a poll of the flags in use holds the body, not its decoded form")
			assert.Less(t, held, uint64(len(body))*5/4, "the set holds the document once")
			assert.Less(t, start, uint64(len(body))*5, "loading holds the document and its decoded form")
			assert.Less(t, update, uint64(len(body))*5, "an update holds no more than Start")
		})
	}
}
