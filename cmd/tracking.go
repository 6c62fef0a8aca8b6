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
	fs.StringVar(&t.printEvents, "print-events", "", "print the events that would be sent, with the de-dup decision, as JSON Lines to FILE (- for stderr); nothing is sent")
	fs.Lookup("print-events").NoOptDefVal = "-"
	fs.String("events-server-url", "", "analytics events URL (env EXPERIMENT_EVENTS_SERVER_URL; default by --server-zone)")
}

// exposureSink is an open exposure service and what must happen at exit.
type exposureSink struct {
	svc   *experiment.ExposureService
	out   io.Closer
	print *experiment.EventPrinter
	errw  io.Writer
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
// users already evaluated are not lost on an interrupt), and reports loss.
func (s *exposureSink) close() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.svc.Close(ctx)
	if s.print != nil && s.print.Err() != nil {
		err = errors.Join(err, s.print.Err())
	}
	if s.out != nil {
		if cerr := s.out.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	if err != nil {
		fmt.Fprintf(s.errw, "experiment: warning: exposure events: %v\n", err)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
