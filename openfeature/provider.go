package openfeature

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/experiment"
	of "github.com/open-feature/go-sdk/openfeature"
)

// Name is the provider's name in OpenFeature metadata and events.
const Name = "flagkit-experiment-local"

// Default bounds of Init and Shutdown when their context has no deadline.
const (
	DefaultInitTimeout     = 10 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// Options tunes the provider; zero values mean the defaults.
type Options struct {
	// InitTimeout bounds the first fetch of flag configs when the context
	// given to InitWithContext has no deadline, and always for Init.
	// Past it, Init fails (the provider is in ERROR) and the client keeps
	// trying in the background: the first flags that arrive make the
	// provider READY, with an event.
	InitTimeout time.Duration
	// ShutdownTimeout bounds Shutdown (queued tracking events are sent
	// within it), and ShutdownWithContext when its context has no deadline.
	ShutdownTimeout time.Duration
}

// ErrShutdown is returned by Init after Shutdown: the LocalClient behind the
// provider cannot be started again. Make a new provider.
var ErrShutdown = errors.New("openfeature provider: shut down")

// Provider is an OpenFeature provider that evaluates flags locally with an
// experiment.LocalClient it owns. It implements of.FeatureProvider,
// of.ContextAwareStateHandler (and so of.StateHandler) and of.EventHandler.
// Evaluations are safe from any number of goroutines.
type Provider struct {
	client  *experiment.LocalClient
	opts    Options
	reasons reasons
	events  *emitter

	mu       sync.Mutex // guards the lifecycle below
	started  bool       // Init succeeded
	shut     bool
	stop     chan struct{} // closed by Shutdown: the provider's goroutine ends
	shutOnce sync.Once
	shutErr  error
}

// New makes a provider and the LocalClient behind it, for a server
// deployment key and cfg (nil for the defaults). Nothing is fetched until
// Init. cfg.OnUpdate, if set, is still called, before the provider looks at
// the update; cfg itself is not modified.
func New(deploymentKey string, cfg *experiment.LocalConfig, opts *Options) (*Provider, error) {
	p := &Provider{stop: make(chan struct{})}
	if opts != nil {
		p.opts = *opts
	}
	if p.opts.InitTimeout < 0 || p.opts.ShutdownTimeout < 0 {
		return nil, fmt.Errorf("openfeature provider: negative timeout (InitTimeout %v, ShutdownTimeout %v)", p.opts.InitTimeout, p.opts.ShutdownTimeout)
	}
	if p.opts.InitTimeout == 0 {
		p.opts.InitTimeout = DefaultInitTimeout
	}
	if p.opts.ShutdownTimeout == 0 {
		p.opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	p.events = newEmitter(p.stop)
	var local experiment.LocalConfig
	if cfg != nil {
		local = *cfg
	}
	// Configuration changes come from OnUpdate, which has both flag sets:
	// the keys can then include flags that depend on a changed flag and
	// flags whose targeted cohorts changed, which a consumer re-evaluating
	// "the changed flags" must hear about too. State changes (READY, STALE,
	// ERROR) come from OnStatusChange.
	userOnUpdate, userOnStatus := local.OnUpdate, local.OnStatusChange
	local.OnUpdate = func(prev, next *experiment.FlagSet) {
		if userOnUpdate != nil {
			userOnUpdate(prev, next)
		}
		if prev != nil { // the first flags are READY, not a change
			p.events.pushChange(prev, next)
		}
	}
	local.OnStatusChange = func(ev experiment.StatusEvent) {
		if userOnStatus != nil {
			userOnStatus(ev)
		}
		p.statusEvent(ev)
	}
	client, err := experiment.NewLocalClient(deploymentKey, &local)
	if err != nil {
		return nil, err
	}
	p.client = client
	return p, nil
}

// Client is the LocalClient behind the provider, for Status, Flush and
// evaluations outside OpenFeature. Its lifecycle belongs to the provider:
// do not Start or Close it.
func (p *Provider) Client() *experiment.LocalClient { return p.client }

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks returns none: the provider needs no hooks of its own.
func (p *Provider) Hooks() []of.Hook { return nil }

// Init is InitWithContext bounded by Options.InitTimeout.
func (p *Provider) Init(evalCtx of.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext starts the LocalClient: it returns once flag configs are
// in use (from the server, or from the cache directory when the server
// cannot be reached), within ctx and at most Options.InitTimeout when ctx
// has no deadline. The evaluation context is not used: flags are evaluated
// per call, with each call's context. A rejected deployment key is fatal
// (PROVIDER_FATAL); any other failure leaves the provider in ERROR while
// the client keeps trying, and the first flags to arrive make it READY.
func (p *Provider) InitWithContext(ctx context.Context, _ of.EvaluationContext) error {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return ErrShutdown
	}
	if p.started {
		// The SDK initializes a provider once per domain it is set for.
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.InitTimeout)
		defer cancel()
	}
	err := p.client.Start(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return ErrShutdown
	}
	p.events.start()
	if errors.Is(err, experiment.ErrUnauthorized) {
		p.events.setState(of.FatalState)
		return &of.ProviderInitError{ErrorCode: of.ProviderFatalCode, Message: "the flag config server rejected the deployment key: " + err.Error()}
	}
	if p.client.FlagSet() == nil {
		// From here on a READY status event is the provider's to emit:
		// the client goes on trying, and its first flags make the
		// provider READY.
		p.events.setState(of.ErrorState)
		// Flags that arrived while Init still counted as under way had
		// their READY left to Init: if they are in use by now, Init
		// succeeds after all.
		if p.client.FlagSet() == nil {
			if err == nil {
				// A second Start after a failed one may report
				// success without flags; evaluations would all fail.
				err = errors.New("no flag configs after Start")
			}
			return fmt.Errorf("openfeature provider: %w", err)
		}
	}
	// Flags are in use, even if Start gave up just as they arrived.
	p.started = true
	p.events.setState(of.ReadyState)
	// Start succeeds on a cached copy when the server cannot be reached:
	// ready, but already stale, and handlers should hear it.
	if st := p.client.Status(); st.State == experiment.StateInterrupted {
		p.events.transition(of.StaleState, staleMessage(st.LastError))
	}
	return nil
}

// ShutdownWithContext closes the LocalClient (queued tracking events are
// sent within ctx, or Options.ShutdownTimeout when ctx has no deadline),
// stops the provider's goroutines and closes the event channel. Later
// calls return the first call's result.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.shutOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.opts.ShutdownTimeout)
			defer cancel()
		}
		p.mu.Lock()
		p.shut = true
		p.mu.Unlock()
		// The client first: once it is closed no update can call back.
		p.shutErr = p.client.CloseContext(ctx)
		close(p.stop)
		p.events.wait()
		p.events.closeChannel()
	})
	return p.shutErr
}

// Shutdown is ShutdownWithContext bounded by Options.ShutdownTimeout.
func (p *Provider) Shutdown() {
	_ = p.ShutdownWithContext(context.Background())
}

// EventChannel delivers READY (recovered after STALE or ERROR, or the first
// flags after a failed Init), CONFIGURATION_CHANGED (with the keys of the
// flags whose evaluation may have changed), STALE and ERROR. It is closed by
// Shutdown.
func (p *Provider) EventChannel() <-chan of.Event { return p.events.out }

// statusEvent maps the client's status events to provider events; the
// emitter drops those that do not change the provider's state.
func (p *Provider) statusEvent(ev experiment.StatusEvent) {
	switch ev.Kind {
	case experiment.StatusEventReady:
		p.events.transition(of.ReadyState, "flag config updates succeed")
	case experiment.StatusEventStale:
		p.events.transition(of.StaleState, staleMessage(ev.Err))
	case experiment.StatusEventError:
		switch {
		case errors.Is(ev.Err, experiment.ErrUnauthorized):
			// Updates stopped for good. The flags in use, if any, are
			// still served (ERROR, not FATAL, so evaluations go on).
			p.events.transition(of.ErrorState, "the flag config server rejected the deployment key; flag updates stopped: "+ev.Err.Error())
		case ev.Status.Flags > 0:
			p.events.transition(of.StaleState, staleMessage(ev.Err))
		default:
			p.events.transition(of.ErrorState, "no flag configs: "+errText(ev.Err))
		}
	}
}

func staleMessage(err error) string {
	return "serving the last good flag configs; updates are failing: " + errText(err)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
