package fleet

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	o, err := ParseURL("redis://:s3cret@127.0.0.1:6380/2", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:6380"}, o.Addrs)
	assert.Equal(t, "s3cret", o.Password)
	assert.Equal(t, 2, o.DB)
	assert.Nil(t, o.TLSConfig)

	o, err = ParseURL("rediss://user:p%40ss@cache.example", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"cache.example:6379"}, o.Addrs)
	assert.Equal(t, "user", o.Username)
	assert.Equal(t, "p@ss", o.Password)
	require.NotNil(t, o.TLSConfig)
	assert.Empty(t, o.TLSConfig.ServerName, "each dial checks its own host")

	o, err = ParseURL("redis-sentinel://:pw@s1:26380,s2/mymaster/3?sentinel_password=sp", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"s1:26380", "s2:26379"}, o.Addrs)
	assert.Equal(t, "mymaster", o.MasterName)
	assert.Equal(t, 3, o.DB)
	assert.Equal(t, "pw", o.Password)
	assert.Equal(t, "sp", o.SentinelPassword)

	o, err = ParseURL("redis://n1:7000,n2:7001", true)
	require.NoError(t, err)
	assert.True(t, o.IsClusterMode)
	assert.Equal(t, []string{"n1:7000", "n2:7001"}, o.Addrs)

	for _, bad := range []struct{ url, want string }{
		{"localhost:6379", "want a redis://"},
		{"http://h", "scheme"},
		{"redis://", "no host"},
		{"redis://h:0", "bad port"},
		{"redis://h/x", "database"},
		{"redis://a,b", "--redis-cluster"},
		{"redis-sentinel://s1", "master"},
	} {
		_, err := ParseURL(bad.url, false)
		require.Error(t, err, bad.url)
		assert.Contains(t, err.Error(), bad.want, bad.url)
	}
	_, err = ParseURL("redis://:pw@h/1", true)
	assert.ErrorContains(t, err, "database 0")
	_, err = ParseURL("redis-sentinel://h/m", true)
	assert.ErrorContains(t, err, "not a Cluster")
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:s3cret@h:1/0": "redis://:xxxxx@h:1/0",
		"rediss://u:s3cret@h":   "rediss://u:xxxxx@h",
		"redis://h:1":           "redis://h:1",
		"redis-sentinel://h/m?sentinel_password=s3cret": "redis-sentinel://h/m?sentinel_password=xxxxx",
		"redis://:s3cret@a:1,b:2?x=1":                   "redis://:xxxxx@a:1,b:2?x=1",
		"not a url":                                     "not a url",
	} {
		assert.Equal(t, want, Redact(in), in)
	}
}

// FuzzParseURL: no input panics, and no error quotes a password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://:pw@h:1/2", "rediss://u:pw@h", "redis-sentinel://:pw@a,b:1/m/2?sentinel_password=x",
		"redis://a:1,b:2", "redis://[::1]:6379", "redis://%zz:pw@h", "redis://:pw@h:99999"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, cluster bool) {
		_, err := ParseURL(raw, cluster)
		if err == nil {
			return
		}
		// The userinfo, as given, never appears with its "@".
		if scheme, rest, ok := strings.Cut(raw, "://"); ok && strings.HasPrefix(scheme, "redis") && !strings.Contains(scheme, "@") {
			rest, _, _ = strings.Cut(rest, "?")
			if at := strings.LastIndex(rest, "@"); at > 0 && strings.Contains(err.Error(), rest[:at+1]) {
				t.Fatalf("error %q quotes the credentials of %q", err, raw)
			}
		}
		_ = Redact(raw)
	})
}

// FuzzDispatch: a notice of any shape (another fleet's, a stray PUBLISH)
// wakes at most the relays it names and never panics.
func FuzzDispatch(f *testing.F) {
	dep := Hash("server-fuzz")
	for _, s := range []string{"flags " + dep + " abc", "cohort k3v9qa 1", "lease " + dep + " free", "", "flags", "x y z w", "lease other free"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		r := &Relay{dep: dep, wake: make(chan struct{}, 1), free: make(chan struct{}, 1), cohorts: map[string]*cohortState{}}
		dispatch(payload, []*Relay{r})
		fields := strings.Fields(payload)
		named := len(fields) == 3 && fields[1] == dep
		if (len(r.wake) > 0 || len(r.free) > 0) && !named {
			t.Fatalf("%q woke a relay it does not name", payload)
		}
	})
}
