package openfeature_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/flagkit/experiment/pkg/experiment"
	"github.com/flagkit/experiment/pkg/experiment/experimenttest"
	"github.com/open-feature/go-sdk/openfeature"

	ampof "github.com/flagkit/experiment/openfeature"
)

func ExampleNew() {
	// A fake flag config server stands in for Amplitude here.
	srv := experimenttest.NewFlagServer("server-key", []byte(`[{"key":"new-editor",
		"metadata":{"deployed":true,"flagType":"release","flagVersion":4},
		"segments":[
			{"conditions":[[{"selector":["context","user","user_properties","plan"],"op":"is","values":["pro"]}]],"metadata":{"segmentName":"Pro"},"variant":"on"},
			{"metadata":{"segmentName":"All Other Users"},"variant":"off"}],
		"variants":{"on":{"key":"on","value":"on"},"off":{"key":"off","metadata":{"default":true}}}}]`))
	defer srv.Close()

	ctx := context.Background()
	provider, err := ampof.New("server-key", &experiment.LocalConfig{
		ServerURL: srv.URL, // omit for Amplitude's servers
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Init fetches the flags; Shutdown closes the client behind the provider.
	if err := openfeature.SetProviderWithContextAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	defer openfeature.ShutdownWithContext(ctx)

	client := openfeature.NewDefaultClient()
	for _, plan := range []string{"pro", "free"} {
		user := openfeature.NewEvaluationContext("user-1", map[string]any{"plan": plan, "country": "NZ"})
		d, err := client.BooleanValueDetails(ctx, "new-editor", false, user)
		fmt.Println(plan, d.Value, d.Reason, d.Variant, d.FlagMetadata["segmentName"], err)
	}
	// Output:
	// pro true TARGETING_MATCH on Pro <nil>
	// free false DEFAULT off All Other Users <nil>
}
