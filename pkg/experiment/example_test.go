package experiment_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/analytics/analyticstest"
	"github.com/flagkit/experiment/pkg/cohort/cohorttest"
	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
)

// The examples run offline against the fakes of experimenttest and
// cohorttest, serving the repository's example flags (testdata/flags.json).
// In production, leave the URLs empty (or set ServerZone) to reach Amplitude.
const exampleKey = "server-example-key"

func exampleFlagServer() *experimenttest.FlagServer {
	body, err := os.ReadFile("../../testdata/flags.json")
	if err != nil {
		panic(err)
	}
	return experimenttest.NewFlagServer(exampleKey, body)
}

// Local evaluation: Start downloads the flag configs once and keeps them
// fresh in the background; evaluations then run in memory, with no request.
func ExampleLocalClient_EvaluateV2() {
	server := exampleFlagServer()
	defer server.Close()

	client, err := experiment.NewLocalClient(exampleKey, &experiment.LocalConfig{ServerURL: server.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	user := &experiment.User{UserID: "user-1", UserProperties: map[string]any{"plan": "pro"}}
	variants, err := client.EvaluateV2(user, "attachment-size-limit-mb")
	if err != nil {
		fmt.Println(err)
		return
	}
	v := variants["attachment-size-limit-mb"]
	fmt.Println(v.Key, v.Value)
	// Output: pro 250
}

// The lifecycle: a client is made without I/O, Start brings the first flags
// (or fails within its context), Status tells how fresh they are, and Close
// stops every goroutine and flushes queued events.
func ExampleLocalClient_Status() {
	server := exampleFlagServer()
	defer server.Close()

	client, err := experiment.NewLocalClient(exampleKey, &experiment.LocalConfig{ServerURL: server.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(client.Status().State)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := client.Status()
	fmt.Println(st.State, st.Source, st.Flags)

	if err := client.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(client.Status().State)
	// Output:
	// starting
	// ready server 18
	// closed
}

// Cohort targeting: with CohortSyncConfig the client downloads the cohorts
// its flags target before Start returns, and keeps them fresh.
func ExampleCohortSyncConfig() {
	flags := exampleFlagServer()
	defer flags.Close()
	cohorts := cohorttest.NewServer("api-key", "secret-key")
	defer cohorts.Close()
	if err := cohorts.AddDir("../../testdata/cohorts"); err != nil {
		fmt.Println(err)
		return
	}

	client, err := experiment.NewLocalClient(exampleKey, &experiment.LocalConfig{
		ServerURL: flags.URL,
		CohortSyncConfig: &experiment.CohortSyncConfig{
			APIKey: "api-key", SecretKey: "secret-key", CohortServerURL: cohorts.URL,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	for _, id := range []string{"user-4", "user-5"} {
		variants, err := client.EvaluateV2(&experiment.User{UserID: id}, "power-user-perks")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(id, variants["power-user-perks"].Key)
	}
	for _, c := range client.Status().Cohorts {
		fmt.Println(c.ID, c.Source, c.Members)
	}
	// Output:
	// user-4 on
	// user-5 off
	// k3v9qa server 8
	// x7m2pd server 3
}

// Exposure tracking: with ExposureConfig, an evaluation that asks for it
// sends an exposure event per variant served, de-duplicated, in the
// background; Close (or Flush) sends what is queued.
func ExampleLocalClient_EvaluateV2WithOptions() {
	flags := exampleFlagServer()
	defer flags.Close()
	analyticsSrv := analyticstest.NewServer()
	defer analyticsSrv.Close()

	client, err := experiment.NewLocalClient(exampleKey, &experiment.LocalConfig{
		ServerURL: flags.URL,
		ExposureConfig: &experiment.ExposureConfig{
			Config: analytics.Config{APIKey: "analytics-api-key", ServerURL: analyticsSrv.EventsURL()},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	user := &experiment.User{UserID: "user-1", UserProperties: map[string]any{"plan": "pro"}}
	opts := &experiment.EvaluateOptions{FlagKeys: []string{"attachment-size-limit-mb"}, TracksExposure: true}
	for range 2 { // the second exposure is a duplicate and is not sent
		if _, err := client.EvaluateV2WithOptions(user, opts); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := client.CloseContext(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range analyticsSrv.DecodedEvents() {
		props := ev["event_properties"].(map[string]any)
		fmt.Println(ev["event_type"], props["[Experiment] Flag Key"], props["[Experiment] Variant"])
	}
	// Output: [Experiment] Exposure attachment-size-limit-mb pro
}

// A config that cannot work is refused by the constructor, before anything
// starts, with an error a service can recognise.
func ExampleConfigError() {
	_, err := experiment.NewLocalClient(exampleKey, &experiment.LocalConfig{
		FlagConfigPollingInterval: -time.Second,
		CohortSyncConfig:          &experiment.CohortSyncConfig{APIKey: "api-key"},
	})
	fmt.Println(errors.Is(err, experiment.ErrInvalidConfig))
	var ce *experiment.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// true
	// FlagConfigPollingInterval is negative (-1s)
	// CohortSyncConfig needs both APIKey and SecretKey
}
