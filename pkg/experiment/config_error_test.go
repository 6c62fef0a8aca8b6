package experiment_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/experiment"
)

// Every constructor's answer to a config it cannot use is ErrInvalidConfig,
// with each problem reachable through *ConfigError, so a service can tell a
// setup bug from an outage without reading messages.
func TestConfigErrorsAreInspectable(t *testing.T) {
	for name, tc := range map[string]struct {
		make     func() error
		config   string
		problems int
	}{
		"remote: two bad settings": {func() error {
			_, err := experiment.NewRemoteClient("server-key", &experiment.RemoteConfig{FetchTimeout: -time.Second, FetchRetries: -1})
			return err
		}, "remote config", 2},
		"remote: empty key": {func() error {
			_, err := experiment.NewRemoteClient(" ", nil)
			return err
		}, "remote client", 1},
		"remote: key with a control character": {func() error {
			_, err := experiment.NewRemoteClient("server-\x00key", nil)
			return err
		}, "remote client", 1},
		"local: empty key": {func() error {
			_, err := experiment.NewLocalClient("", nil)
			return err
		}, "local client", 1},
		"local: bad settings": {func() error {
			_, err := experiment.NewLocalClient("server-key", &experiment.LocalConfig{
				FlagConfigPollingInterval: -time.Second,
				CohortSyncConfig:          &experiment.CohortSyncConfig{APIKey: "api"},
			})
			return err
		}, "local config", 2},
		"exposure: no API key": {func() error {
			_, err := experiment.NewExposureService(experiment.ExposureConfig{Config: analytics.Config{FlushInterval: -1}})
			return err
		}, "exposure config", 1},
		"exposure: negative cache": {func() error {
			_, err := experiment.NewExposureService(experiment.ExposureConfig{
				Config: analytics.Config{APIKey: "api"}, CacheCapacity: -1})
			return err
		}, "exposure config", 1},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.make()
			require.Error(t, err)
			assert.ErrorIs(t, err, experiment.ErrInvalidConfig)
			var ce *experiment.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.config, ce.Config)
			assert.Len(t, ce.Problems, tc.problems, err.Error())
			assert.True(t, strings.HasPrefix(err.Error(), tc.config+": "), "no package prefix: %s", err)
		})
	}
}

// Run-time failures are not config errors: retrying those may help.
func TestRuntimeErrorsAreNotConfigErrors(t *testing.T) {
	c, err := experiment.NewLocalClient("server-key", &experiment.LocalConfig{ServerURL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.EvaluateV2(&experiment.User{UserID: "u"})
	require.ErrorIs(t, err, experiment.ErrNotStarted)
	assert.False(t, errors.Is(err, experiment.ErrInvalidConfig))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.Start(ctx)
	require.Error(t, err)
	assert.False(t, errors.Is(err, experiment.ErrInvalidConfig), err.Error())
}
