package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/flagkit/experiment/pkg/analytics"
)

// assignmentEvent builds the assignment event of one evaluation at now,
// without de-duplication: one event for all flags. With
// evaluatedProps, the user's device fields and user properties are copied
// onto the event, as the Python SDK's send_evaluated_props does. ok is
// false for a nil user, one with neither a user ID nor a device ID, or no
// variants.
// Assignment events are superseded by exposure events (exposureEvents);
// Amplitude keeps them for old analyses.
func assignmentEvent(user *User, variants map[string]Variant, now time.Time, evaluatedProps bool) (ev analytics.Event, ok bool) {
	if !trackable(user) || len(variants) == 0 {
		return analytics.Event{}, false
	}
	return newAssignmentRecord(user, variants, now.UnixMilli(), evaluatedProps).Event(0), true
}

// assignmentService sends the assignment events of evaluations,
// de-duplicated: the Go form of the Python SDK's assignment service,
// enabled by LocalConfig.AssignmentConfig (deprecated: Amplitude keeps
// assignment events for old analyses). It is safe for concurrent use;
// close it to flush what is queued and stop its sender.
type assignmentService struct {
	svc            *eventService
	evaluatedProps bool
}

// newAssignmentService validates cfg, fills its defaults and starts the
// sender (none when cfg.Printer is set).
func newAssignmentService(cfg AssignmentConfig) (*assignmentService, error) {
	svc, err := newEventService("assignment", cfg.Config, cfg.CacheCapacity, cfg.Printer)
	if err != nil {
		return nil, err
	}
	return &assignmentService{svc: svc, evaluatedProps: cfg.SendEvaluatedProps}, nil
}

// TrackAssignment records the result of one evaluation for user, default
// variants included: if the same user got the same variants of the same
// flags within the last 24 hours, nothing is sent; otherwise one event is
// queued. It never waits for the network (with OverflowBlock it waits
// while the queue is full, as TrackExposure does) and does not keep
// variants or user. A user with neither a user ID nor a device ID is
// skipped.
func (s *assignmentService) TrackAssignment(user *User, variants map[string]Variant) {
	_ = s.TrackAssignmentContext(context.Background(), user, variants)
}

// TrackAssignmentContext is TrackAssignment whose wait for room in a full
// queue (with OverflowBlock) ends with ctx; see TrackExposureContext.
func (s *assignmentService) TrackAssignmentContext(ctx context.Context, user *User, variants map[string]Variant) error {
	a, ok := s.svc.admit(user, variants)
	if !ok {
		return nil
	}
	return s.svc.emit(ctx, a.key, newAssignmentRecord(user, variants, a.nowMs, s.evaluatedProps), 1, a.duplicate)
}

// Flush sends what is queued and waits until it is sent or given up, or
// until ctx is done.
func (s *assignmentService) Flush(ctx context.Context) error { return s.svc.flush(ctx) }

// Close flushes what is queued within ctx's deadline and stops the sender;
// see analytics.Client.Close. Later TrackAssignment calls do nothing.
func (s *assignmentService) Close(ctx context.Context) error { return s.svc.close(ctx) }

// Stats counts the events of the service's analytics client; zero when
// printing.
func (s *assignmentService) Stats() analytics.Stats { return s.svc.stats() }

// assignmentRecord is what an assignment event needs from one evaluation,
// extracted by TrackAssignment; sorting, hashing and the event's maps are
// left to the sender's goroutine.
type assignmentRecord struct {
	userID, deviceID string
	time             int64
	flags            []assignedFlag
	user             *User // device fields and user properties, with SendEvaluatedProps
}

type assignedFlag struct {
	key, variant string
	version      any // metadata.flagVersion
	segment      string
	noUserProp   bool // mutual exclusion group
	isDefault    bool
}

func newAssignmentRecord(user *User, variants map[string]Variant, nowMs int64, evaluatedProps bool) *assignmentRecord {
	rec := &assignmentRecord{
		userID: user.UserID, deviceID: user.DeviceID, time: nowMs,
		flags: make([]assignedFlag, 0, len(variants)),
	}
	for k, v := range variants {
		segment, _ := v.Metadata["segmentName"].(string)
		flagType, _ := v.Metadata["flagType"].(string)
		rec.flags = append(rec.flags, assignedFlag{
			key: k, variant: v.Key, version: v.Metadata["flagVersion"], segment: segment,
			noUserProp: flagType == flagTypeMutualExclusionGroup, isDefault: v.IsDefault(),
		})
	}
	if evaluatedProps {
		u := *user
		u.UserProperties = maps.Clone(user.UserProperties)
		u.Groups, u.GroupProperties, u.CohortIDs, u.GroupCohortIDs = nil, nil, nil, nil
		rec.user = &u
	}
	return rec
}

// Event builds the assignment event; a record has one (analytics.Source).
func (r *assignmentRecord) Event(int) analytics.Event {
	props := make(map[string]any, 2*len(r.flags))
	set := make(map[string]any, len(r.flags))
	unset := make(map[string]any)
	for _, f := range r.flags {
		props[f.key+".variant"] = f.variant
		if v, ok := versionText(f.version); ok && f.segment != "" {
			props[f.key+".details"] = "v" + v + " rule:" + f.segment
		}
		switch {
		case f.noUserProp:
		case f.isDefault:
			unset[userPropertyPrefix+f.key] = "-"
		default:
			set[userPropertyPrefix+f.key] = f.variant
		}
	}
	results := make([]resultKey, len(r.flags))
	for i, f := range r.flags {
		results[i] = resultKey{f.key, f.variant}
	}
	code, _ := digestCanonical(r.userID, r.deviceID, results)
	ev := analytics.Event{
		EventType:       assignmentEventType,
		UserID:          r.userID,
		DeviceID:        r.deviceID,
		EventProperties: props,
		InsertID:        insertID(r.userID, r.deviceID, code, r.time),
		Time:            r.time,
	}
	userProps := map[string]any{}
	if u := r.user; u != nil {
		// The Python SDK's send_evaluated_props. It also sets "version",
		// "os" and "ip_address", which its analytics client drops as unknown
		// event fields [py-bug]; they are sent here under the HTTP API's
		// names for them, app_version, os_name and ip.
		ev.Country, ev.Region, ev.City, ev.DMA, ev.Language = u.Country, u.Region, u.City, u.DMA, u.Language
		ev.Platform, ev.AppVersion, ev.OSName, ev.IP = u.Platform, u.Version, u.OS, u.IPAddress
		ev.DeviceBrand, ev.DeviceManufacturer, ev.DeviceModel = u.DeviceBrand, u.DeviceManufacturer, u.DeviceModel
		ev.Carrier, ev.Library = u.Carrier, u.Library
		if u.UserProperties != nil {
			userProps = maps.Clone(u.UserProperties)
		}
	}
	userProps["$set"] = set
	userProps["$unset"] = unset
	ev.UserProperties = userProps
	return ev
}

// versionText formats a non-zero metadata.flagVersion as the Go SDK does
// (%v of the number, e.g. "7"); ok is false for zero, a missing value or a
// non-number.
func versionText(v any) (string, bool) {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'g', -1, 64), n != 0
	case int:
		return strconv.Itoa(n), n != 0
	case int64:
		return strconv.FormatInt(n, 10), n != 0
	case json.Number:
		f, err := n.Float64()
		return n.String(), err == nil && f != 0
	case float32, int8, int16, int32, uint, uint8, uint16, uint32, uint64:
		s := fmt.Sprint(n)
		return s, s != "0"
	}
	return "", false
}
