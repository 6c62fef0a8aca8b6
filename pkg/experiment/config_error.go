package experiment

import (
	"errors"
	"strings"
)

// ErrInvalidConfig matches, with errors.Is, every error a constructor returns
// because of what it was given rather than anything it met at run time:
// NewLocalClient, NewRemoteClient and NewExposureService reject an empty
// deployment key, a negative duration, CohortSyncConfig without both keys,
// an analytics config analytics.NewClient would refuse, and the like this
// way, before starting anything. Such an error is a bug in the caller's setup: retrying cannot
// help.
var ErrInvalidConfig = errors.New("invalid config")

// ConfigError is the error behind ErrInvalidConfig, for a caller that wants
// the problems one by one (errors.As): every invalid setting is reported, not
// only the first, so one run shows all there is to fix.
type ConfigError struct {
	// Config names what was rejected as the message begins with it: "local
	// config", "remote config", "exposure config", "local client" (its
	// deployment key) and so on.
	Config string
	// Problems says what is wrong, one error per setting, naming the field
	// ("FetchTimeout is negative (-1s)"). Some wrap a more specific error.
	Problems []error
}

// newConfigError is nil without problems, so a constructor can collect them
// and return the result.
func newConfigError(config string, problems ...error) error {
	if len(problems) == 0 {
		return nil
	}
	return &ConfigError{Config: config, Problems: problems}
}

// Error is the config's name and the problems, one a line, as errors.Join
// writes them.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Config)
	b.WriteString(": ")
	b.WriteString(errors.Join(e.Problems...).Error())
	return b.String()
}

// Unwrap gives the problems to errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
