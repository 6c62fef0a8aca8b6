package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// trackingFlags are evaluate's --track-exposure and --print-events: send
// the exposures of the evaluated users to Amplitude, or print the events
// that would be sent.
type trackingFlags struct {
	track       bool
	printEvents string
	fs          *pflag.FlagSet
}

func (t *trackingFlags) register(fs *pflag.FlagSet) {
	t.fs = fs
	fs.BoolVar(&t.track, "track-exposure", false, "send exposure events of the evaluated users to Amplitude (needs --api-key), flushed before exit")
	fs.StringVar(&t.printEvents, "print-events", "", "print the events that would be sent, with the de-dup decision, as JSON Lines on stderr, or to FILE with --print-events=FILE; nothing is sent")
	fs.Lookup("print-events").NoOptDefVal = "-"
	fs.String("events-server-url", "", "analytics events URL (env EXPERIMENT_EVENTS_SERVER_URL; default by --server-zone)")
}

// exposureSink is an open exposure service and what must happen at exit.
type exposureSink struct {
	svc   *experiment.ExposureService
	out   io.Closer
	print *experiment.EventPrinter
	errw  io.Writer
	key   experiment.Secret // the analytics API key, when sending
}

func (t *trackingFlags) open(f *Factory) (*exposureSink, error) {
	if !t.track && t.printEvents == "" {
		return nil, nil
	}
	cfg := experiment.ExposureConfig{}
	sink := &exposureSink{errw: f.IO.ErrOut}
	if t.printEvents != "" {
		var w io.Writer = f.IO.ErrOut
		if t.printEvents != "-" {
			file, err := os.Create(t.printEvents)
			if err != nil {
				return nil, ioError(err)
			}
			w, sink.out = file, file
		}
		sink.print = experiment.NewEventPrinter(w)
		cfg.Printer = sink.print
	} else {
		key, err := f.settingValue(t.fs, "api-key")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, withHint(usageError("--track-exposure needs the analytics API key: --api-key or EXPERIMENT_API_KEY"),
				"or use --print-events to see the events without sending them")
		}
		zoneName, _ := f.settingValue(t.fs, "server-zone")
		zone, err := experiment.ParseServerZone(zoneName)
		if err != nil {
			return nil, usageError("--server-zone: %v", err)
		}
		url, _ := f.settingValue(t.fs, "events-server-url")
		cfg.TrackerConfig = experiment.TrackerConfig{APIKey: key, ServerZone: zone, ServerURL: url, Logger: discardLogger()}
		sink.key = experiment.Secret(key)
	}
	svc, err := experiment.NewExposureService(cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	sink.svc = svc
	return sink, nil
}

// track exposes one user's results.
func (s *exposureSink) track(user *experiment.User, results []eval.Result) {
	if s == nil {
		return
	}
	variants := make(map[string]experiment.Variant, len(results))
	for _, r := range results {
		variants[r.FlagKey] = experiment.VariantOf(r)
	}
	s.svc.TrackExposure(user, variants)
}

// close flushes what is queued, within 10 s even after Ctrl-C (events of
// users already evaluated are not lost on an interrupt). Lost events are
// the command's failure: its output stands, but a script that asked for
// --track-exposure learns from the exit code that Amplitude did not get
// them (4 for a rejected API key, 5 for the network or server, 6 for a
// --print-events file that could not be written). When the command
// already failed (failed), the loss is only a warning beside its error.
func (s *exposureSink) close(failed bool) error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.lossError(s.svc.Close(ctx))
	if s.print != nil && s.print.Err() != nil {
		err = ioError(fmt.Errorf("--print-events: %w", s.print.Err()))
	}
	if s.out != nil {
		if cerr := s.out.Close(); cerr != nil && err == nil {
			err = ioError(fmt.Errorf("--print-events: %w", cerr))
		}
	}
	if err != nil && failed {
		fmt.Fprintf(s.errw, "experiment: warning: %v\n", err)
		return nil
	}
	return err
}

func (s *exposureSink) lossError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, experiment.ErrAPIKeyRejected):
		return &exitError{code: ExitAuth, err: fmt.Errorf("exposure events: API key %v rejected: %w", s.key, err),
			hint: "use the analytics API key of the project (Amplitude > Settings > Projects), not a deployment key"}
	default:
		return &exitError{code: ExitNetwork, err: fmt.Errorf("exposure events: %w", err),
			hint: "check --events-server-url / --server-zone and the network; the variants above were evaluated all the same"}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
