package experiment

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// A LocalClient's tracking: the exposure and assignment services of its
// LocalConfig, checked when the client is made and started with it.

// tracking is a started client's exposure and assignment services, either
// of which may be nil.
type tracking struct {
	exposure   *ExposureService
	assignment *assignmentService
}

// checkTracking validates the tracking configs as NewExposureService and
// newAssignmentService would, without starting their senders: those start
// with the client, in Start.
func checkTracking(s *localSettings) error {
	if e := s.exposure; e != nil {
		if err := checkEventService(e.Config, e.CacheCapacity, e.Printer != nil); err != nil {
			return newConfigError("local config", fmt.Errorf("exposure: %w", err))
		}
	}
	if a := s.assignment; a != nil {
		if err := checkEventService(a.Config, a.CacheCapacity, a.Printer != nil); err != nil {
			return newConfigError("local config", fmt.Errorf("assignment: %w", err))
		}
	}
	return nil
}

// startTracking makes the tracking services, and so starts their senders.
func (c *LocalClient) startTracking() (*tracking, error) {
	t := &tracking{}
	var err error
	if e := c.s.exposure; e != nil {
		if t.exposure, err = NewExposureService(*e); err != nil {
			return nil, fmt.Errorf("local config: exposure: %w", err)
		}
	}
	if a := c.s.assignment; a != nil {
		if t.assignment, err = newAssignmentService(*a); err != nil {
			if t.exposure != nil {
				_ = t.exposure.Close(context.Background()) // nothing was queued
			}
			return nil, fmt.Errorf("local config: assignment: %w", err)
		}
	}
	return t, nil
}

func (t *tracking) flush(ctx context.Context) error {
	var errs []error
	if t.exposure != nil {
		errs = append(errs, t.exposure.Flush(ctx))
	}
	if t.assignment != nil {
		errs = append(errs, t.assignment.Flush(ctx))
	}
	return errors.Join(errs...)
}

// close flushes and stops both services at once, so that together they
// take no longer than ctx allows either. Their errors (*LostEventsError)
// say which events were lost.
func (t *tracking) close(ctx context.Context) error {
	var exposureErr, assignmentErr error
	var wg sync.WaitGroup
	if t.exposure != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.exposure.Close(ctx); err != nil {
				exposureErr = fmt.Errorf("exposure events: %w", err)
			}
		}()
	}
	if t.assignment != nil {
		if err := t.assignment.Close(ctx); err != nil {
			assignmentErr = fmt.Errorf("assignment events: %w", err)
		}
	}
	wg.Wait()
	return errors.Join(exposureErr, assignmentErr)
}
