package interop

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/amplitude/experiment-go-server/pkg/experiment"
	"github.com/amplitude/experiment-go-server/pkg/experiment/local"
	"github.com/amplitude/experiment-go-server/pkg/experiment/remote"
)

// TestGoSDKConformance evaluates every conformance user through Amplitude's
// Go SDK pointed at serve: a polling local client, a streaming local client
// (both with cohort sync when the case has cohorts), and the remote client.
// One serve process per case, shared by the clients and the OFREP provider.
func TestGoSDKConformance(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			p := startServe(t, c.Flags, c.Cohorts)
			poll := startLocal(t, "poll-"+c.Name, c, &local.Config{ServerUrl: p.URL}, p.URL)
			// The trailing slash is how many users write a base URL; the
			// cohort URL is joined by string concatenation, so serve sees
			// `//sdk/v1/cohort/...` from this client.
			stream := startLocal(t, "stream-"+c.Name, c, &local.Config{
				ServerUrl:       p.URL + "/",
				StreamUpdates:   true,
				StreamServerUrl: p.URL + "/",
			}, p.URL+"/")
			requireStreamClients(t, p, 1)
			// Every other user goes through a remote client whose URL ends
			// in a slash.
			remotes := []*remote.Client{newRemote(c.Name, p.URL), newRemote(c.Name+"/", p.URL+"/")}
			for i, line := range c.Users {
				rem := remotes[i%2]
				want := c.Expected[i]
				checkResult(t, "local poll", c, i, want, evalLocal(t, poll, line))
				checkResult(t, "local stream", c, i, want, evalLocal(t, stream, line))
				checkRemote(t, rem, poll, c, i, line)
			}
			checkOFREPGo(t, p, c)
		})
	}
}

func newRemote(name, url string) *remote.Client {
	return remote.Initialize("interop-remote-"+name, &remote.Config{
		ServerUrl:    url,
		FetchTimeout: 10 * time.Second,
		RetryBackoff: &remote.RetryBackoff{FetchRetries: 0},
	})
}

// startLocal starts a local evaluation client with a distinct deployment
// key (the SDK keeps one client per key for the whole process). Polling is
// set to an hour: the one fetch at start is what is tested, and a stream
// client that fell back to polling would not see later pushes.
func startLocal(t *testing.T, name string, c *confCase, cfg *local.Config, cohortURL string) *local.Client {
	t.Helper()
	cfg.FlagConfigPollerInterval = time.Hour
	if c.Cohorts != "" {
		cfg.CohortSyncConfig = &local.CohortSyncConfig{
			ApiKey: "interop-api", SecretKey: "interop-secret", CohortServerUrl: cohortURL,
		}
	}
	client := local.Initialize("interop-"+name, cfg)
	if err := client.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	return client
}

func decodeUser(t *testing.T, line []byte) *experiment.User {
	t.Helper()
	var u experiment.User
	mustJSON(t, line, &u)
	return &u
}

func evalLocal(t *testing.T, client *local.Client, line []byte) map[string]any {
	t.Helper()
	got, err := client.EvaluateV2(decodeUser(t, line), nil)
	if err != nil {
		t.Fatalf("EvaluateV2: %v", err)
	}
	return variants(t, got)
}

// variants writes the SDK's variants with all four fields, as expected.jsonl
// does (the SDK's own JSON tags omit empty ones).
func variants(t *testing.T, vs map[string]experiment.Variant) map[string]any {
	out := map[string]any{}
	for k, v := range vs {
		out[k] = map[string]any{"key": v.Key, "value": v.Value, "payload": v.Payload, "metadata": v.Metadata}
	}
	return generic(t, out)
}

// checkRemote fetches through the remote client. The SDK stamps
// `library: experiment-go-server/1.12.0` on users that have none, and some
// flags target `library`: for those users the oracle is the official local
// client evaluating the same stamped user (it produced expected.jsonl).
func checkRemote(t *testing.T, rem *remote.Client, oracle *local.Client, c *confCase, i int, line []byte) {
	t.Helper()
	user := decodeUser(t, line)
	got, err := rem.FetchV2(user)
	if err != nil {
		t.Errorf("remote: %s users.jsonl:%d: %v", c.Name, i+1, err)
		return
	}
	want := c.Expected[i]
	if decodeUser(t, line).Library == "" {
		stamped, err := oracle.EvaluateV2(user, nil)
		if err != nil {
			t.Fatal(err)
		}
		want = variants(t, stamped)
	}
	checkResult(t, "remote", c, i, want, variants(t, got))
}

// requireStreamClients waits until serve's /status counts n open streams:
// the SDK falls back to polling silently when its stream fails.
func requireStreamClients(t *testing.T, p *serveProc, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st struct {
			Deployments []struct {
				StreamClients int `json:"stream_clients"`
			} `json:"deployments"`
		}
		resp, err := http.Get(p.URL + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && len(st.Deployments) > 0 && st.Deployments[0].StreamClients >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve reports %+v stream clients (err %v), want %d", st, err, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
