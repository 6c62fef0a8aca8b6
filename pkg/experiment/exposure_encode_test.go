package experiment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/flagkit/experiment/pkg/eval"
)

// encodingJSON is what the analytics client sends for an event it builds:
// Event(i), library filled in, through encoding/json.
func encodingJSON(t testing.TB, rec *exposureRecord, i int, library string) string {
	t.Helper()
	ev := rec.Event(i)
	if ev.Library == "" {
		ev.Library = library
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// checkAppendEvent compares AppendEvent with encodingJSON for every event
// of the evaluation, appended after what the buffer already holds.
func checkAppendEvent(t testing.TB, user *User, variants map[string]Variant, nowMs int64, library string) int {
	t.Helper()
	rec := newExposureRecord(user, variants, nowMs)
	if rec == nil {
		return 0
	}
	for i := range rec.flags {
		out, uid, did, err := rec.AppendEvent([]byte("[previous],"), i, library)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := "[previous]," + encodingJSON(t, rec, i, library); string(out) != want {
			t.Fatalf("event %d:\n got %s\nwant %s", i, out, want)
		}
		if uid != user.UserID || did != user.DeviceID {
			t.Fatalf("event %d: IDs %q %q", i, uid, did)
		}
	}
	return len(rec.flags)
}

// TestExposureAppendEventIsEncodingJSON: the exposures of the bench flags
// for varied users, and values that take every path of the writer
// (escapes, non-ASCII, invalid UTF-8, HTML characters, numbers, nested
// values, empty and missing metadata, mutual exclusion groups), are written
// byte for byte as encoding/json writes them.
func TestExposureAppendEventIsEncodingJSON(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", "flags-100.json"))
	if err != nil {
		t.Fatal(err)
	}
	flags, err := eval.DecodeFlags(data)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFlagSet(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := range 200 {
		u := &User{UserID: fmt.Sprintf("user-%d", i), DeviceID: fmt.Sprintf("device-%d", i%7),
			Country:        []string{"United States", "Germany", "India"}[i%3],
			UserProperties: map[string]any{"plan": []string{"pro", "free", "enterprise"}[i%3], "age": float64(20 + i%50)},
			Groups:         map[string][]string{"org id": {fmt.Sprint(i % 5)}}}
		if i%4 == 0 {
			u.UserID = ""
		}
		v, err := fs.EvaluateV2(u)
		if err != nil {
			t.Fatal(err)
		}
		checked += checkAppendEvent(t, u, v, 1700000000000+int64(i), "experiment-go-cli/test")
	}
	if checked < 1000 {
		t.Fatalf("only %d exposures checked", checked)
	}

	odd := map[string]Variant{
		"quote\"flag":  {Key: "on\\", Metadata: map[string]any{"experimentKey": "exp<&>", "flagVersion": 7.0}},
		"unicode-é":    {Key: "vär", Value: "x", Metadata: map[string]any{"segmentName": "line\nbreak\t\u2028\u2029", "z": nil}},
		"invalid-utf8": {Key: "a\xffb", Metadata: map[string]any{"n": 1e21, "small": 1e-7, "int": 3.0, "neg": -0.5}},
		"nested":       {Key: "on", Metadata: map[string]any{"obj": map[string]any{"b": []any{1.0, "x", true}, "a": map[string]any{}}, "arr": []any{}}},
		"value-only":   {Value: "val", Metadata: map[string]any{}},
		"no-label":     {},
		"no-meta":      {Key: "on"},
		"meg":          {Key: "slot-1", Metadata: map[string]any{"flagType": "mutual-exclusion-group", "experimentKey": ""}},
		"ek-not-str":   {Key: "on", Metadata: map[string]any{"experimentKey": 5.0, "flagType": true}},
		"json-number":  {Key: "on", Metadata: map[string]any{"v": json.Number("12.50"), "b": false}},
		"\x00ctl":      {Key: "\x01", Metadata: map[string]any{"\x7f": "\x1f"}},
	}
	users := []*User{
		{UserID: "u1", DeviceID: "d1"},
		{DeviceID: "only-device"},
		{UserID: "ü\"ser", Groups: map[string][]string{"b": {"2", "1"}, "a<": {}, "nil": nil, "é\n": {"\xff"}}},
	}
	for _, u := range users {
		checkAppendEvent(t, u, odd, 1700000000000, "lib/1.0")
		checkAppendEvent(t, u, odd, 0, "") // no time, no library: both omitted
	}
}

// TestExposureAppendEventFailsAlone: a metadata value JSON cannot encode
// fails the event, leaving the buffer as it was.
func TestExposureAppendEventFailsAlone(t *testing.T) {
	rec := newExposureRecord(&User{UserID: "u1"}, map[string]Variant{
		"bad": {Key: "on", Metadata: map[string]any{"x": math.NaN()}},
	}, 1)
	out, _, _, err := rec.AppendEvent([]byte("before"), 0, "lib")
	if err == nil {
		t.Fatal("want an error for NaN")
	}
	if string(out) != "before" {
		t.Fatalf("buffer left %q", out)
	}
}

// TestJSONFloatIsEncodingJSON: numbers, written without reflection, as
// encoding/json writes them.
func TestJSONFloatIsEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 7, 0.5, 1e-6, 9.99e-7, 1e-7, 1.5e-9, 1e20, 1e21, 1.2345e21,
		-1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-100, 3.14159, 1 / 3.0, 2e-300} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFloat(nil, f); string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
}

// FuzzExposureAppendEvent holds AppendEvent to encoding/json for any IDs,
// flag key, variant, metadata string and number, and group.
func FuzzExposureAppendEvent(f *testing.F) {
	f.Add("u1", "d1", "flag", "on", "val", "exp-1", "experiment", 7.0)
	f.Add("", "d\x00", "f\"", "\xff", "", "<&>", "mutual-exclusion-group", 1e21)
	f.Add("\u2028", "", "é", "", "v\\", "", "", -0.5)
	f.Add("u", "d", "f", "k", "v", "e", "t", 1e-7)
	f.Fuzz(func(t *testing.T, userID, deviceID, flag, key, value, experimentKey, flagType string, number float64) {
		if userID == "" && deviceID == "" || math.IsNaN(number) || math.IsInf(number, 0) {
			return
		}
		variants := map[string]Variant{flag: {Key: key, Value: value,
			Metadata: map[string]any{"experimentKey": experimentKey, "flagType": flagType, flag: key, "n": number}}}
		u := &User{UserID: userID, DeviceID: deviceID, Groups: map[string][]string{flagType: {experimentKey, value}}}
		checkAppendEvent(t, u, variants, 1700000000000, value)
	})
}
