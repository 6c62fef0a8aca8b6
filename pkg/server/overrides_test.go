package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/server"
)

func TestParseOverride(t *testing.T) {
	for in, want := range map[string]server.Override{
		"f=on":             {Flag: "f", Variant: "on"},
		"f=on@user@ex.com": {Flag: "f", Variant: "on", ID: "user@ex.com"},
	} {
		got, err := server.ParseOverride(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"f", "=on", "f=", "f=on@"} {
		if _, err := server.ParseOverride(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestApplyOverrides(t *testing.T) {
	flags, err := eval.DecodeFlags(fixture(t, "flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	before := len(flags[0].Segments)
	out, err := server.ApplyOverrides(flags, []server.Override{
		{Flag: "new-editor", Variant: "on", ID: "dev-7"},
		{Flag: "dark-mode", Variant: "on"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(flags[0].Segments) != before {
		t.Fatal("the input flags were modified")
	}
	// Served and read back, as a local-evaluation SDK would.
	f, err := server.FlagsOf(out, nil, "test", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	served, err := eval.DecodeFlags(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := experiment.NewFlagSet(served, nil)
	for _, c := range []struct {
		user       experiment.User
		flag, want string
	}{
		{experiment.User{DeviceID: "dev-7"}, "new-editor", "on"},
		{experiment.User{UserID: "dev-7"}, "new-editor", "on"},
		{experiment.User{UserID: "someone"}, "new-editor", "off"},
		{experiment.User{UserID: "someone"}, "dark-mode", "on"},
	} {
		v, _ := set.EvaluateV2(&c.user, c.flag)
		if v[c.flag].Key != c.want || (c.want == "on" && v[c.flag].Metadata["segmentName"] != server.OverrideSegmentName) {
			t.Errorf("%+v %s: %+v", c.user, c.flag, v[c.flag])
		}
	}
	for _, bad := range []server.Override{{Flag: "nope", Variant: "on"}, {Flag: "new-editor", Variant: "purple"}} {
		if _, err := server.ApplyOverrides(flags, []server.Override{bad}); err == nil || !strings.Contains(err.Error(), bad.String()) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
