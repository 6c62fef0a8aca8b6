package experiment

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A LocalClient's life: made (nothing runs), started (the updater keeps the
// flags fresh), closed (nothing runs, for good). One state machine, under
// one mutex, decides every transition, so that Start, Close and evaluations
// may be called in any order from any goroutine:
//
//   - Start launches goroutines only under the mutex and only while the
//     client is not closed; Close marks the client closed under the same
//     mutex before it waits for them, so nothing is launched that Close
//     does not wait for.
//   - Every goroutine, and every request, runs under a context made with
//     the client and canceled by Close: nothing reaches a server once Close
//     has returned.
//   - A Start that failed leaves the client startable: the next Start
//     tries again. Concurrent Starts share one attempt.

// defaultStartTimeout bounds Start when neither LocalConfig.StartTimeout
// nor the caller's context sets an earlier deadline. The official SDKs fail
// fast when the flag server cannot be reached; a Start without a bound would
// hang a service's boot forever.
const defaultStartTimeout = 10 * time.Second

// ErrClosed is returned by a closed client: by LocalClient.Start once Close
// has been called (or when Close came while Start was waiting), since a
// closed client cannot be started again, and by RemoteClient's fetches
// after or during Close.
var ErrClosed = errors.New("client closed")

// ErrExposureNotConfigured is returned by an evaluation with
// EvaluateOptions.TracksExposure when LocalConfig.ExposureConfig is not
// set: the exposures asked for could not be sent.
var ErrExposureNotConfigured = errors.New("exposure tracking asked for (EvaluateOptions.TracksExposure) without LocalConfig.ExposureConfig")

type lifeState int

const (
	stateNew      lifeState = iota // made, or a Start failed: Start may run
	stateStarting                  // a Start attempt is under way
	stateStarted                   // a Start succeeded: flags are in use
	stateClosed                    // Close was called
)

// lifecycle is a LocalClient's state machine and what Close stops.
type lifecycle struct {
	mu      sync.Mutex
	state   lifeState
	attempt *startAttempt // under way in stateStarting; concurrent Starts wait for it
	// launched: the updater (and cohort poller) were started. They outlive
	// a failed Start, retrying in the background, so a later Start does
	// not start them again.
	launched bool

	// ctx is canceled by Close: the background goroutines end with it, and
	// their requests are aborted.
	ctx    context.Context
	cancel context.CancelFunc
	// workers are the background goroutines launched, which Close waits
	// for: one by one, so that Close called on one of them (from a
	// callback) waits for the others but not for itself.
	workers []*worker
	// closed is closed when the first CloseContext returns: a concurrent
	// Close waits for it, so that any Close having returned means closed.
	closed chan struct{}
	// retry asks the updater to try now rather than at the end of its
	// backoff: a Start after a failed one must not wait up to a polling
	// interval for the next attempt.
	retry chan struct{}

	// track holds the tracking services once Start made them; read without
	// the mutex by evaluations.
	track atomic.Pointer[tracking]
}

// worker is a background goroutine: g is its goid once it runs, done is
// closed when it ends.
type worker struct {
	g    atomic.Uint64
	done chan struct{}
}

// goWorker runs fn on a new worker goroutine; l.mu is held.
func (l *lifecycle) goWorker(fn func()) {
	w := &worker{done: make(chan struct{})}
	l.workers = append(l.workers, w)
	go func() {
		defer close(w.done)
		w.g.Store(goid())
		fn()
	}()
}

// goid is the calling goroutine's id, parsed from its stack's header
// ("goroutine 18 [running]:"). Go gives no other way to tell, in Close,
// that it was called from a callback on a goroutine Close would wait for:
// a deadlock forever otherwise. Only Close, deliveries and the start of a
// worker pay for it, never an evaluation.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = b[len("goroutine "):]
	for i, ch := range b {
		if ch == ' ' {
			b = b[:i]
			break
		}
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// errCloseInCallback is joined to CloseContext's error when it was called
// from OnStatusChange or OnUpdate, which their docs forbid.
var errCloseInCallback = errors.New("client closed from within OnStatusChange or OnUpdate: Close did not wait for the goroutine it was called on, which stops once the callback returns")

// startAttempt is one attempt of Start; err is set before done is closed.
type startAttempt struct {
	done chan struct{}
	err  error
}

func (l *lifecycle) init() {
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.retry = make(chan struct{}, 1)
	l.closed = make(chan struct{})
}

// pause waits d, or less when a Start asks for an attempt now. It returns
// ctx's error when ctx ends first.
func (l *lifecycle) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-l.retry:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startTimeoutOf is LocalConfig.StartTimeout, or its default.
func startTimeoutOf(cfg *LocalConfig) (time.Duration, error) {
	if cfg == nil || cfg.StartTimeout == 0 {
		return defaultStartTimeout, nil
	}
	if cfg.StartTimeout < 0 {
		return 0, newConfigError("local config", fmt.Errorf("StartTimeout is negative (%v)", cfg.StartTimeout))
	}
	return cfg.StartTimeout, nil
}

// Start fetches flag configs and keeps them fresh until Close. It returns
// once flags are in use. When the first attempt fails and a cached snapshot
// exists, the cache is used at once (Status says so, with its age) and
// Start returns nil; without a cache it goes on retrying until ctx ends and
// returns the error of the last attempt. A rejected key (ErrUnauthorized)
// is returned at once, cache or not.
//
// Start waits no longer than LocalConfig.StartTimeout (10 s unless set),
// or ctx's deadline when that is earlier: so Start(context.Background())
// with the server unreachable and no cache fails after 10 s, with the last
// attempt's error. The wait for the cohorts the first flags target
// (CohortSyncConfig.LoadTimeout) is within that bound too.
//
// After a failed Start the client keeps trying in the background until
// Close, unless the key was rejected, and flags that arrive are used. A
// later Start tries again at once and returns nil when flags are in use; a
// rejected key is final (Done is closed), and every later Start returns
// that error. Starts made while one is under way share its attempt: they
// return its result, or if their own ctx ends first, the last attempt's
// error (or ctx's error when there was none yet). Start
// after a successful Start returns nil at once.
//
// Start after Close, or when Close is called while Start waits, returns
// ErrClosed and starts nothing.
func (c *LocalClient) Start(ctx context.Context) error {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.startTimeout)
	defer cancel()
	l := &c.life
	l.mu.Lock()
	switch l.state {
	case stateClosed:
		l.mu.Unlock()
		return ErrClosed
	case stateStarted:
		l.mu.Unlock()
		return nil
	case stateStarting:
		a := l.attempt
		l.mu.Unlock()
		select {
		case <-a.done:
			return a.err
		case <-ctx.Done():
		}
		select {
		case <-a.done: // ended together: its result says more than ctx
			return a.err
		default:
		}
		// What went wrong so far, as the attempt itself would say.
		c.mu.Lock()
		lastErr := c.status.LastError
		c.mu.Unlock()
		if lastErr != nil {
			return lastErr
		}
		return fmt.Errorf("waiting for a concurrent Start: %w", ctx.Err())
	}
	if l.track.Load() == nil {
		t, err := c.startTracking()
		if err != nil {
			l.mu.Unlock()
			return err
		}
		l.track.Store(t)
	}
	a := &startAttempt{done: make(chan struct{})}
	l.state, l.attempt = stateStarting, a
	l.mu.Unlock()

	err := c.start(ctx, begin)

	l.mu.Lock()
	switch {
	case l.state == stateClosed:
		err = ErrClosed
	case err == nil:
		l.state = stateStarted
	default:
		l.state = stateNew
	}
	l.attempt = nil
	l.mu.Unlock()
	a.err = err
	close(a.done)
	return err
}

// launch starts the updater, and the cohort poller, unless they run
// already (a Start failed before: they are asked to try again now). It
// reports false when the client is closed: then nothing was started.
func (c *LocalClient) launch() bool {
	l := &c.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateClosed {
		return false
	}
	if l.launched {
		if c.flags.Load() == nil {
			select {
			case l.retry <- struct{}{}:
			default: // already asked
			}
		}
		return true
	}
	l.launched = true
	l.goWorker(func() {
		defer c.stopUpdates()
		c.run(l.ctx)
	})
	if c.cohorts != nil {
		l.goWorker(func() { c.pollCohorts(l.ctx) })
	}
	return true
}

// Close is CloseContext with up to 10 seconds for the queued tracking
// events to be sent.
func (c *LocalClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.CloseContext(ctx)
}

// CloseContext stops the client for good: the updater and the cohort
// poller stop, requests in flight are aborted, and once it returns nothing
// more is sent to the flag, stream or cohort servers. A Start under way
// returns ErrClosed, and so does every later Start. Done is closed and
// Status says StateClosed. Evaluations go on with the last flags, but
// track nothing.
//
// Tracking events still queued are sent until ctx ends; CloseContext
// returns by then. When events were lost, during the client's life or
// because ctx ended first, the error says how many and why: errors.As
// finds a *LostEventsError (one per tracking service), and errors.Is(err,
// context.DeadlineExceeded) tells that ctx cut the final flush short. It
// also reports, should ctx end first, that the background goroutines were
// still stopping (a slow OnUpdate or OnStatusChange).
//
// Only the first call does this. A later one returns nil once the first
// has returned (or its own ctx's error, should ctx end before).
//
// No OnStatusChange or OnUpdate call starts once CloseContext began, and
// one under way on another goroutine is waited for (within ctx). Close
// must not be called from those callbacks; if it is, it does not wait for
// the goroutine it was called on (that would be forever): it stops
// everything else, and returns at once with an error saying so; that
// goroutine ends once the callback returns.
func (c *LocalClient) CloseContext(ctx context.Context) error {
	l := &c.life
	l.mu.Lock()
	if l.state == stateClosed {
		l.mu.Unlock()
		select {
		case <-l.closed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.state = stateClosed
	workers := l.workers // final: no launch once closed
	l.mu.Unlock()
	l.cancel()
	defer close(l.closed)
	// From now on nothing changes the state back (recordSuccess and
	// recordError keep StateClosed), not even an update under way.
	c.mu.Lock()
	c.status.State = StateClosed
	c.mu.Unlock()

	self := goid()
	delivery, inCallback := c.s.notify.shut(self)
	var applied chan struct{}
	if c.onUpdateG.Load() == self {
		inCallback = true // applyMu is held by this very goroutine
	} else {
		// An apply under way (Start's, with the cache: Close does not wait
		// for Start) ends, OnUpdate included, before Close returns; any
		// later one sees the client closed. Waited for on a goroutine so
		// that ctx bounds the wait for a slow OnUpdate; should ctx end
		// first, it ends with that OnUpdate.
		applied = make(chan struct{})
		go func() {
			c.applyMu.Lock()
			//lint:ignore SA2001 waiting for the apply under way is the point
			c.applyMu.Unlock()
			close(applied)
		}()
	}

	var errs []error
	// After the state changed, no Start makes the services any more.
	if t := l.track.Load(); t != nil {
		errs = append(errs, t.close(ctx))
	}
	waits := make([]<-chan struct{}, 0, len(workers)+2)
	if delivery != nil {
		waits = append(waits, delivery)
	}
	if applied != nil {
		waits = append(waits, applied)
	}
	for _, w := range workers {
		if w.g.Load() == self {
			inCallback = true
			continue
		}
		waits = append(waits, w.done)
	}
	if inCallback {
		errs = append(errs, errCloseInCallback)
	}
	for _, ch := range waits {
		if err := waitFor(ctx, ch); err != nil {
			errs = append(errs, fmt.Errorf("flag updater still stopping: %w", err))
			break
		}
	}
	c.stopUpdates() // offline, or never started: there was no updater to do it
	if c.cohorts != nil {
		c.cohorts.client.Close()
	}
	if c.s.ownsClient {
		c.s.httpClient.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// waitFor waits for ch to be closed, or ctx to end; a ctx already done
// must not hide a prompt stop.
func waitFor(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		select {
		case <-ch:
			return nil
		default:
			return ctx.Err()
		}
	}
}

// endStartWait marks Start as done waiting for the first flags: from now
// on their wait for cohorts heeds CohortSyncConfig.LoadTimeout only.
func (cs *cohortSync) endStartWait() {
	if cs == nil {
		return
	}
	cs.mu.Lock()
	cs.startCtx = nil
	cs.mu.Unlock()
}
