package server_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/server"
)

// TestSwapUnderLoad swaps flag sets while requests are in flight: every
// answer is one whole set's, never a mix (run with -race).
func TestSwapUnderLoad(t *testing.T) {
	ts := newTestServer(t, server.Options{})
	one := mustFlags(t, []byte(`[{"key":"f","variants":{"a":{"key":"a"}},"segments":[{"variant":"a"}]}]`), nil)
	two := mustFlags(t, []byte(`[{"key":"f","variants":{"b":{"key":"b"}},"segments":[{"variant":"b"}]},{"key":"g","variants":{"b":{"key":"b"}},"segments":[{"variant":"b"}]}]`), nil)
	// The server starts on the testdata flags: set one of the two before
	// any request, or a request beating the swapper's first Set sees a
	// third set.
	ts.store.Set(one)
	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Add(1)
	go func() {
		defer swapper.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				ts.store.Set(one)
			} else {
				ts.store.Set(two)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				var v map[string]struct{ Key string }
				r := ts.do(t, "POST", "/sdk/v2/vardata", `{"user_id":"u"}`)
				if err := json.Unmarshal(r.body, &v); err != nil {
					t.Errorf("%v", err)
					return
				}
				if !(len(v) == 1 && v["f"].Key == "a") && !(len(v) == 2 && v["f"].Key == "b" && v["g"].Key == "b") {
					t.Errorf("a mixed answer: %s", r.body)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	swapper.Wait()
}

// TestStoreNoChangeWakesNobody: setting what is already held (the same
// problem again, as a relay notes each failed poll) leaves Changed open,
// so open streams are not all woken to find nothing new.
func TestStoreNoChangeWakesNobody(t *testing.T) {
	store := server.NewStore()
	f := mustFlags(t, []byte(`[]`), nil)
	unchanged := func(what string, set func()) *server.State {
		t.Helper()
		st := store.Current()
		set()
		if store.Current() != st {
			t.Fatalf("%s: the state was replaced by the same flags and problem", what)
		}
		select {
		case <-st.Changed:
			t.Fatalf("%s: Changed closed without a change", what)
		default:
		}
		return st
	}
	store.Set(f)
	unchanged("Set again", func() { store.Set(f) })
	store.SetProblem("upstream down")
	st := unchanged("the same problem again", func() { store.SetProblem("upstream down") })
	store.SetProblem("")
	select {
	case <-st.Changed:
	default:
		t.Fatal("Changed still open after the problem cleared")
	}
}
