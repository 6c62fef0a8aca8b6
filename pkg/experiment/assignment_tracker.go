package experiment

import (
	"context"

	"github.com/flagkit/experiment/pkg/analytics"
)

// AssignmentTracker sends the assignment events of evaluations made
// outside a LocalClient, de-duplicated as LocalConfig.AssignmentConfig's
// are: a relay's remote evaluations, which Amplitude's remote evaluation
// API tracks as assignments. It is safe for concurrent use; Close it to
// flush what is queued and stop its sender.
type AssignmentTracker struct {
	s *assignmentService
}

// NewAssignmentTracker starts a sender with cfg (cfg.APIKey is needed) and
// a de-duplication cache of cacheCapacity evaluations (0: 65536).
func NewAssignmentTracker(cfg analytics.Config, cacheCapacity int) (*AssignmentTracker, error) {
	s, err := newAssignmentService(AssignmentConfig{Config: cfg, CacheCapacity: cacheCapacity})
	if err != nil {
		return nil, err
	}
	return &AssignmentTracker{s: s}, nil
}

// TrackAssignment records the result of one evaluation for user, as
// LocalClient's assignment tracking does: nothing is sent when the same
// user got the same variants within the last 24 hours.
func (a *AssignmentTracker) TrackAssignment(user *User, variants map[string]Variant) {
	a.s.TrackAssignment(user, variants)
}

// Flush sends what is queued and waits until it is sent or given up, or
// until ctx is done.
func (a *AssignmentTracker) Flush(ctx context.Context) error { return a.s.Flush(ctx) }

// Close flushes what is queued within ctx's deadline and stops the sender.
func (a *AssignmentTracker) Close(ctx context.Context) error { return a.s.Close(ctx) }

// Stats counts the events of the service's analytics client.
func (a *AssignmentTracker) Stats() analytics.Stats { return a.s.Stats() }
