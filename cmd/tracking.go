package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/flagkit/experiment/internal/atomicfile"
	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/pkg/analytics"
	"github.com/flagkit/experiment/pkg/eval"
	"github.com/flagkit/experiment/pkg/experiment"
)

// trackingFlags are evaluate's --track-exposure and --print-events: send
// the exposures of the evaluated users to Amplitude, or print the events
// that would be sent.
type trackingFlags struct {
	track           bool
	printEvents     string
	eventsServerURL string // a setting (settings.go)
}

func (t *trackingFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&t.track, "track-exposure", false, "send exposure events of the evaluated users to Amplitude (needs --api-key), flushed before exit")
	fs.StringVar(&t.printEvents, "print-events", "", "print the events that would be sent, with the de-dup decision, as JSON Lines on stderr, or to FILE with --print-events=FILE (replaced when the command succeeds); nothing is sent")
	fs.Lookup("print-events").NoOptDefVal = "-"
	bindSetting(fs, &t.eventsServerURL, "events-server-url", "analytics events server base URL; /2/httpapi is added to one without a path")
}

// The tracked batch's sending: requests as large as the API takes (2000
// events, under 1 MB), several at once so that a distant server's latency
// is paid in parallel, and a queue of a few requests' worth per sender.
// The queue blocks: a batch that outruns the server waits for it rather
// than dropping events (issue 14: most events were lost at 200 a request,
// one at a time, from a queue that dropped when full).
const (
	trackBatchEvents = 2000
	trackSenders     = 8
	trackQueueEvents = 2 * trackSenders * trackBatchEvents
)

// exposureSink is an open exposure service and what must happen at exit.
type exposureSink struct {
	svc   *experiment.ExposureService
	out   *atomicfile.File // --print-events=FILE
	print *analytics.Printer
	errw  io.Writer
	key   experiment.Secret // the analytics API key, when sending
	// ctx ends a wait for room in the queue: the batch's, so that Ctrl-C
	// or a failed output stops evaluation even when the server is slow.
	ctx context.Context
}

// open starts tracking, with the command's analytics API key and zone
// (its --api-key and --server-zone), when the options ask for it.
func (t *trackingFlags) open(ios *cli.IOStreams, apiKey string, zone experiment.ServerZone) (*exposureSink, error) {
	if !t.track && t.printEvents == "" {
		return nil, nil
	}
	cfg := experiment.ExposureConfig{}
	sink := &exposureSink{errw: ios.ErrOut}
	if t.printEvents != "" {
		var w io.Writer = ios.ErrOut
		if t.printEvents != "-" {
			// Written aside and renamed at the end, as every output file is:
			// a full disk or a failed run never leaves the file empty or half
			// written, nor truncates the one already there.
			file, err := atomicfile.Create(t.printEvents, 0o644)
			if err != nil {
				return nil, ioError(fmt.Errorf("--print-events: %w", err))
			}
			w, sink.out = file, file
		}
		sink.print = analytics.NewPrinter(w)
		cfg.Printer = sink.print
		cfg.Library = cliLibrary()
	} else {
		if apiKey == "" {
			return nil, withHint(usageError("--track-exposure needs the analytics API key: --api-key or EXPERIMENT_API_KEY"),
				"or use --print-events to see the events without sending them")
		}
		url := eventsEndpoint(t.eventsServerURL)
		cfg.Config = analytics.Config{APIKey: apiKey, ServerZone: analytics.ServerZone(zone), ServerURL: url, Logger: discardLogger(), Library: cliLibrary(),
			Overflow: analytics.OverflowBlock, FlushQueueSize: trackBatchEvents,
			MaxConcurrentRequests: trackSenders, QueueCapacity: trackQueueEvents}
		sink.key = experiment.Secret(apiKey)
	}
	svc, err := experiment.NewExposureService(cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	sink.svc = svc
	return sink, nil
}

// in is the sink for a run that ends with ctx: tracking stops waiting for
// room in the queue when ctx is done.
func (s *exposureSink) in(ctx context.Context) *exposureSink {
	if s == nil {
		return nil
	}
	c := *s
	c.ctx = ctx
	return &c
}

// track exposes one user's results. It waits while the queue is full, and
// gives up when the sink's context ends: the run is then over, and the
// events not queued are counted as lost in close's report.
func (s *exposureSink) track(user *experiment.User, results []eval.Result) {
	if s == nil {
		return
	}
	s.send(pendingExposure{user: user, variants: variantsOf(results)})
}

// pendingExposure is one user's results made ready to track: a batch
// worker builds it, and the writer sends it once the user's line is
// written, so that a run stopped at an invalid line tracks exactly the
// users it printed.
type pendingExposure struct {
	index    int // into the lines its part covers
	user     *experiment.User
	variants map[string]experiment.Variant
}

func variantsOf(results []eval.Result) map[string]experiment.Variant {
	variants := make(map[string]experiment.Variant, len(results))
	for _, r := range results {
		variants[r.FlagKey] = experiment.VariantOf(r)
	}
	return variants
}

func (s *exposureSink) send(e pendingExposure) {
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	_ = s.svc.TrackExposureContext(ctx, e.user, e.variants)
}

// close flushes what is queued: while the server keeps taking events, and
// at most 10 s after it stops taking any (see drain); after Ctrl-C or
// SIGTERM (cmdCtx done), within 10 s in all (events of users already
// evaluated are not lost on an interrupt, nor is the user kept waiting). Lost events are
// the command's failure: its output stands, but a script that asked for
// --track-exposure learns from the exit code that Amplitude did not get
// them (4 for a rejected API key, 5 for the network or server, 6 for a
// --print-events file that could not be written). When the command
// already failed (failed), the loss is only a warning beside its error.
// A --print-events file replaces the one there only when the command
// succeeded and every event reached it; otherwise it is discarded and an
// existing file kept.
func (s *exposureSink) close(cmdCtx context.Context, failed bool) error {
	if s == nil {
		return nil
	}
	// After a stall, Close gives up what is left at once: the wait was had.
	wait := flushStall
	if cmdCtx.Err() == nil && s.drain(flushStall) {
		wait = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := s.lossError(s.svc.Close(ctx))
	if s.print != nil && s.print.Err() != nil {
		err = ioError(fmt.Errorf("--print-events: %w", s.print.Err()))
	}
	if s.out != nil {
		if err != nil || failed {
			s.out.Abort()
		} else if cerr := s.out.Commit(); cerr != nil {
			err = ioError(fmt.Errorf("--print-events: %w", cerr))
		}
	}
	if err != nil && failed {
		fmt.Fprintf(s.errw, "experiment: warning: %v\n", err)
		return nil
	}
	return err
}

// flushStall bounds the final flush by progress, not by a fixed time: a
// large queue a healthy (or slow) server keeps taking is delivered whole,
// and a server that takes nothing costs at most flushStall at the end.
const flushStall = 10 * time.Second

// drain flushes until nothing is queued, or a whole stall window passes
// without an event accepted (stalled).
func (s *exposureSink) drain(stall time.Duration) (stalled bool) {
	for {
		before := s.svc.Stats()
		if before.Queued == 0 {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), stall)
		err := s.svc.Flush(ctx)
		cancel()
		if err == nil {
			return false
		}
		if s.svc.Stats().Sent == before.Sent {
			return true
		}
	}
}

func (s *exposureSink) lossError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, analytics.ErrAPIKeyRejected):
		return &exitError{code: ExitAuth, err: fmt.Errorf("exposure events: API key %v rejected: %w", s.key, err),
			hint: "use the analytics API key of the project (Amplitude > Settings > Projects), not a deployment key"}
	default:
		return &exitError{code: ExitNetwork, err: fmt.Errorf("exposure events: %w", err),
			hint: "check --events-server-url / --server-zone and the network; the variants above were evaluated all the same"}
	}
}

// eventsPath is the path of Amplitude's HTTP V2 API, the one the tracker
// posts to.
const eventsPath = "/2/httpapi"

// eventsEndpoint is the URL exposure events are posted to, given
// --events-server-url. That is a base URL like every --*-server-url
// (docs/cli.md#server-urls): one without a path gets the API's path, as the other
// services get theirs, instead of posting to "/"; one with a path is used
// as it is. Empty is the zone's default.
func eventsEndpoint(base string) string {
	u, err := neturl.Parse(base)
	if base == "" || err != nil || (u.Path != "" && u.Path != "/") {
		return base
	}
	u.Path = eventsPath
	return u.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
