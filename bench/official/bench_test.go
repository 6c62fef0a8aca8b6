package official

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amplitude/experiment-go-server/pkg/experiment"
	"github.com/amplitude/experiment-go-server/pkg/experiment/local"

	"github.com/flagkit/experiment/pkg/eval"
	ours "github.com/flagkit/experiment/pkg/experiment"
)

// benchUserJSON is the benchmark user of the flag sets' README.
const benchUserJSON = `{"user_id":"user-12","device_id":"0f8fad5b-d9cb-469f-a165-70867728950e","country":"United States",` +
	`"platform":"iOS","version":"2.0.0","os":"iOS 17.1","user_properties":{"plan":"pro","age":30,"tags":["alpha","beta"],` +
	`"app_version":"1.2.3","email":"alice@example.com","beta_tester":true},"groups":{"org id":["42"]},` +
	`"group_properties":{"org id":{"42":{"plan":"enterprise","seats":50}}}}`

// evalSizes are the flag counts measured for evaluation: the four files,
// and 10,000 flags generated from the largest.
var evalSizes = []int{1, 10, 100, 1000, 10000}

// loadSizes are the flag counts measured for loading.
var loadSizes = []int{100, 1000, 10000}

// benchUsers returns the benchmark user in both SDKs' forms, from the same
// decoded JSON so that both see identical values.
func benchUsers(tb testing.TB) (*experiment.User, *eval.Context) {
	tb.Helper()
	var u experiment.User
	if err := json.Unmarshal([]byte(benchUserJSON), &u); err != nil {
		tb.Fatal(err)
	}
	ctx := &eval.Context{
		UserID: u.UserId, DeviceID: u.DeviceId, Country: u.Country, Platform: u.Platform,
		Version: u.Version, OS: u.Os, UserProperties: u.UserProperties, Groups: u.Groups,
		GroupProperties: u.GroupProperties,
	}
	return &u, ctx
}

// docs caches the flag documents by size; benchmarks and tests here run
// one at a time.
var docs = map[int][]byte{}

// flagDoc returns the flag document with n flags.
func flagDoc(tb testing.TB, n int) []byte {
	tb.Helper()
	if doc, ok := docs[n]; ok {
		return doc
	}
	var doc []byte
	var err error
	if n == 10000 {
		doc, err = tenfold(flagDoc(tb, 1000))
	} else {
		doc, err = os.ReadFile(filepath.Join("testdata", fmt.Sprintf("flags-%d.json", n)))
	}
	if err != nil {
		tb.Fatal(err)
	}
	docs[n] = doc
	return doc
}

// tenfold makes ten copies of a flag set, the keys of copy i renamed with
// the suffix "~i" (copy 0 keeps them), and so are the dependencies and the
// result selectors that name them: each copy evaluates like the original.
func tenfold(doc []byte) ([]byte, error) {
	var all []any
	for i := range 10 {
		var flags []map[string]any
		if err := json.Unmarshal(doc, &flags); err != nil {
			return nil, err
		}
		rename := func(key string) string {
			if i == 0 {
				return key
			}
			return fmt.Sprintf("%s~%d", key, i)
		}
		for _, f := range flags {
			renameFlag(f, rename)
			all = append(all, f)
		}
	}
	return json.Marshal(all)
}

func renameFlag(f map[string]any, rename func(string) string) {
	f["key"] = rename(f["key"].(string))
	if deps, ok := f["dependencies"].([]any); ok {
		for i, d := range deps {
			deps[i] = rename(d.(string))
		}
	}
	segments, _ := f["segments"].([]any)
	for _, s := range segments {
		groups, _ := s.(map[string]any)["conditions"].([]any)
		for _, g := range groups {
			conds, _ := g.([]any)
			for _, c := range conds {
				sel, _ := c.(map[string]any)["selector"].([]any)
				if len(sel) > 1 && sel[0] == "result" {
					sel[1] = rename(sel[1].(string))
				}
			}
		}
	}
}

// flagServer serves doc as GET /sdk/v2/flags does.
func flagServer(tb testing.TB, doc []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

var clientSeq atomic.Int64

// startOfficial starts a new official local evaluation client on srv. The
// SDK keeps every client for the life of the process, keyed by deployment
// key, so each gets a key of its own.
func startOfficial(tb testing.TB, srv *httptest.Server) *local.Client {
	tb.Helper()
	client := local.Initialize(fmt.Sprintf("server-bench-%d", clientSeq.Add(1)), &local.Config{
		ServerUrl:                srv.URL,
		FlagConfigPollerInterval: 24 * time.Hour, // no refresh during the run
	})
	if err := client.Start(); err != nil {
		tb.Fatal(err)
	}
	return client
}

// restartOurs starts a client as startOurs does and closes it at once:
// the cost of Start, not of holding one client per iteration.
func restartOurs(tb testing.TB, srv *httptest.Server) {
	tb.Helper()
	newOurs(tb, srv).Close()
}

// loadOurs fetches the document from srv and loads it (decodes and
// compiles it in one call).
func loadOurs(tb testing.TB, srv *httptest.Server) *eval.Snapshot {
	snap, err := eval.Load(fetch(tb, srv))
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// compileOurs fetches the document from srv, decodes it to flags and
// compiles them: the Snapshot keeps the decoded flags.
func compileOurs(tb testing.TB, srv *httptest.Server) *eval.Snapshot {
	flags, err := eval.DecodeFlags(fetch(tb, srv))
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := eval.Compile(flags)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// loadFlagSet fetches the document from srv and loads it as our SDK's
// FlagSet, the form a LocalClient and the CLI evaluate.
func loadFlagSet(tb testing.TB, srv *httptest.Server) *ours.FlagSet {
	set, err := ours.LoadFlagSet(fetch(tb, srv), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func fetch(tb testing.TB, srv *httptest.Server) []byte {
	resp, err := http.Get(srv.URL + "/sdk/v2/flags?v=0")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

var (
	sinkVariants map[string]experiment.Variant
	sinkResults  []eval.Result
	sinkOurs     map[string]ours.Variant
)

// startOurs starts our local evaluation client on srv, as startOfficial
// does the official one: no tracking, no refresh during the run.
func startOurs(tb testing.TB, srv *httptest.Server) *ours.LocalClient {
	tb.Helper()
	client := newOurs(tb, srv)
	tb.Cleanup(func() { client.Close() })
	return client
}

// newOurs is a started LocalClient that the caller closes.
func newOurs(tb testing.TB, srv *httptest.Server) *ours.LocalClient {
	tb.Helper()
	client, err := ours.NewLocalClient("server-bench", &ours.LocalConfig{
		ServerURL: srv.URL, FlagConfigPollingInterval: 24 * time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := client.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return client
}

// oursUser is the benchmark user as our SDK takes it, from the official
// SDK's decoded user so that both see identical values.
func oursUser(u *experiment.User) *ours.User {
	return &ours.User{
		UserID: u.UserId, DeviceID: u.DeviceId, Country: u.Country, Platform: u.Platform,
		Version: u.Version, OS: u.Os, UserProperties: u.UserProperties, Groups: u.Groups,
		GroupProperties: u.GroupProperties,
	}
}

// BenchmarkEvaluate evaluates every flag for the benchmark user: the
// official client's EvaluateV2(user, nil), and our engine's Evaluate.
func BenchmarkEvaluate(b *testing.B) {
	user, ctx := benchUsers(b)
	for _, n := range evalSizes {
		srv := flagServer(b, flagDoc(b, n))
		b.Run(fmt.Sprintf("flags=%d/impl=official", n), func(b *testing.B) {
			client := startOfficial(b, srv)
			if _, err := client.EvaluateV2(user, nil); err != nil { // warm, as ours is
				b.Fatal(err)
			}
			runtime.GC() // neither side pays for the other's or its own set-up
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if sinkVariants, err = client.EvaluateV2(user, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("flags=%d/impl=ours", n), func(b *testing.B) {
			snap := loadOurs(b, srv)
			dst := make([]eval.Result, 0, n)
			// the first evaluation merges the metadata each result serves
			if _, err := snap.Evaluate(ctx, nil, dst); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if sinkResults, err = snap.Evaluate(ctx, nil, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("flags=%d/impl=ours-evaluatev2", n), func(b *testing.B) {
			client, u := startOurs(b, srv), oursUser(user)
			if _, err := client.EvaluateV2(u); err != nil { // warm, as the others
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if sinkOurs, err = client.EvaluateV2(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad fetches, decodes and compiles a flag document: the
// official client's Start (it fetches and decodes), and our fetch and Load
// (impl=ours) or DecodeFlags and Compile (impl=ours-compile), LoadFlagSet
// (impl=ours-flagset), and our LocalClient's Start, as the official one's
// (impl=ours-client); impl=fetch is the fetch alone, common to all. B/flag
// is the heap that one loaded set, or started client, holds.
func BenchmarkLoad(b *testing.B) {
	for _, n := range loadSizes {
		srv := flagServer(b, flagDoc(b, n))
		b.Run(fmt.Sprintf("flags=%d/impl=official", n), func(b *testing.B) {
			before := heapInUse()
			client := startOfficial(b, srv)
			held := heapInUse() - before
			b.ReportAllocs()
			for b.Loop() {
				if err := client.Start(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(held)/float64(n), "B/flag")
		})
		loadHeld(b, fmt.Sprintf("flags=%d/impl=ours", n), n,
			func(tb testing.TB) any { return loadOurs(tb, srv) }, func(tb testing.TB) { loadOurs(tb, srv) })
		loadHeld(b, fmt.Sprintf("flags=%d/impl=ours-compile", n), n,
			func(tb testing.TB) any { return compileOurs(tb, srv) }, func(tb testing.TB) { compileOurs(tb, srv) })
		loadHeld(b, fmt.Sprintf("flags=%d/impl=ours-flagset", n), n,
			func(tb testing.TB) any { return loadFlagSet(tb, srv) }, func(tb testing.TB) { loadFlagSet(tb, srv) })
		loadHeld(b, fmt.Sprintf("flags=%d/impl=ours-client", n), n,
			func(tb testing.TB) any { return startOurs(tb, srv) }, func(tb testing.TB) { restartOurs(tb, srv) })
		b.Run(fmt.Sprintf("flags=%d/impl=fetch", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fetch(b, srv)
			}
		})
	}
}

// loadHeld runs a sub-benchmark of again, reporting the live heap that
// what first returns holds, per flag of n.
func loadHeld(b *testing.B, name string, n int, first func(testing.TB) any, again func(testing.TB)) {
	b.Run(name, func(b *testing.B) {
		before := heapInUse()
		v := first(b)
		held := heapInUse() - before
		runtime.KeepAlive(v)
		b.ReportAllocs()
		for b.Loop() {
			again(b)
		}
		b.ReportMetric(float64(held)/float64(n), "B/flag")
	})
}

// TestSameVariants checks that what is measured is the same work: both
// engines give the benchmark user the same variants.
func TestSameVariants(t *testing.T) {
	user, ctx := benchUsers(t)
	for _, n := range evalSizes {
		srv := flagServer(t, flagDoc(t, n))
		want, err := startOfficial(t, srv).EvaluateV2(user, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := loadOurs(t, srv).Evaluate(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make(map[string]experiment.Variant, len(res))
		for _, r := range res {
			got[r.FlagKey] = experiment.Variant{Key: r.Key, Value: r.Value, Payload: r.Payload, Metadata: r.Metadata}
		}
		if len(got) != len(want) {
			t.Errorf("flags=%d: %d variants, the official SDK gives %d", n, len(got), len(want))
		}
		for k, w := range want {
			if g := got[k]; !reflect.DeepEqual(g, w) {
				t.Errorf("flags=%d: %s is %+v, the official SDK gives %+v", n, k, g, w)
			}
		}
	}
}

// TestTenfold checks the generated 10,000-flag set: distinct keys, and
// every copy of a flag evaluates as the original does.
func TestTenfold(t *testing.T) {
	_, ctx := benchUsers(t)
	snap := loadOurs(t, flagServer(t, flagDoc(t, 10000)))
	if snap.Len() != 10000 {
		t.Fatalf("%d flags", snap.Len())
	}
	res, err := snap.Evaluate(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{}
	for _, r := range res {
		variants[r.FlagKey] = r.Key
	}
	for _, key := range snap.Keys()[:1000] {
		for i := 1; i < 10; i++ {
			if copied := fmt.Sprintf("%s~%d", key, i); variants[copied] != variants[key] {
				t.Errorf("%s has variant %q, %s has %q", copied, variants[copied], key, variants[key])
			}
		}
	}
}
