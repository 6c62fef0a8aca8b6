package experiment

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flagkit/experiment/pkg/analytics"
)

// The event types Amplitude Experiment analyses.
const (
	exposureEventType   = "[Experiment] Exposure"
	assignmentEventType = "[Experiment] Assignment"
)

const (
	// dayMillis is the de-duplication TTL and the insert_id day bucket.
	dayMillis = 24 * 60 * 60 * 1000
	// flagTypeMutualExclusionGroup flags never set a user property.
	flagTypeMutualExclusionGroup = "mutual-exclusion-group"
	// userPropertyPrefix names the user property of a flag: "[Experiment] <flag>".
	userPropertyPrefix = "[Experiment] "
)

// exposureEvents builds the exposure events of one evaluation at now,
// without de-duplication: one event per flag, in flag key
// order, skipping flags whose metadata.trackExposure is false and default
// variants. It returns nil for a nil user or one with neither a user ID nor
// a device ID, since Amplitude rejects such events.
func exposureEvents(user *User, variants map[string]Variant, now time.Time) []analytics.Event {
	if !trackable(user) || len(variants) == 0 {
		return nil
	}
	rec := newExposureRecord(user, variants, now.UnixMilli())
	if rec == nil {
		return nil
	}
	events := make([]analytics.Event, len(rec.flags))
	for i := range events {
		events[i] = rec.Event(i)
	}
	return events
}

// ExposureService sends the exposure events of evaluations, de-duplicated:
// the Go form of the Python SDK's exposure service,
// enabled by LocalConfig.ExposureConfig. It is safe for concurrent use;
// Close it to flush what is queued and stop its sender.
type ExposureService struct {
	svc *eventService
}

// NewExposureService validates cfg, fills its defaults and starts the
// sender (none when cfg.Printer is set).
func NewExposureService(cfg ExposureConfig) (*ExposureService, error) {
	svc, err := newEventService("exposure", cfg.Config, cfg.CacheCapacity, cfg.Printer)
	if err != nil {
		return nil, err
	}
	return &ExposureService{svc: svc}, nil
}

// TrackExposure records that user was exposed to variants, the result of
// one evaluation: if the same user got the same variants of the same flags
// within the last 24 hours, nothing is sent; otherwise one event per
// exposed flag is queued. It never waits for the network: with the default
// OverflowDropOldest it never waits at all, and with OverflowBlock it waits
// while the queue is full (see TrackExposureContext). It keeps neither
// variants nor user: it copies what the events need, except maps or slices
// nested inside a variant's Metadata, which are shared until the events are
// sent and must not be modified. A user with neither a user ID nor a device
// ID is skipped. A duplicate costs one pass over variants and allocates
// nothing; the events' maps are built later, on a sender's goroutine.
func (s *ExposureService) TrackExposure(user *User, variants map[string]Variant) {
	_ = s.TrackExposureContext(context.Background(), user, variants)
}

// TrackExposureContext is TrackExposure whose wait for room in a full queue
// (with OverflowBlock) ends with ctx. It returns ctx's error, or
// analytics.ErrClosed when Close came first, when the events were not all
// queued, saying how many were not; those are counted as failed unless the
// call came after Close (it then does nothing). When none was queued the
// evaluation is not remembered, so the next one like it is sent; when some
// were, it is, since sending it again would duplicate them.
func (s *ExposureService) TrackExposureContext(ctx context.Context, user *User, variants map[string]Variant) error {
	a, ok := s.svc.admit(user, variants)
	if !ok {
		return nil
	}
	if rec := newExposureRecord(user, variants, a.nowMs); rec != nil {
		return s.svc.emit(ctx, a.key, rec, len(rec.flags), a.duplicate)
	}
	return nil
}

// Flush sends what is queued and waits until it is sent or given up, or
// until ctx is done.
func (s *ExposureService) Flush(ctx context.Context) error { return s.svc.flush(ctx) }

// Close flushes what is queued within ctx's deadline and stops the sender;
// see analytics.Client.Close. Later TrackExposure calls do nothing.
func (s *ExposureService) Close(ctx context.Context) error { return s.svc.close(ctx) }

// Stats counts the events of the service's analytics client; zero when
// printing.
func (s *ExposureService) Stats() analytics.Stats { return s.svc.stats() }

// exposureRecord is one evaluation's exposures, captured by TrackExposure
// in a few allocations and turned into Events only when they are encoded,
// on a sender's goroutine: sorting, hashing and building the events' maps
// happen there, not in the evaluation. It is the analytics.Source (and
// Appender) of the exposures of one evaluation. A batch may end inside a record, so
// two senders may build its events at once: prepare runs once, and event
// only reads the record.
type exposureRecord struct {
	userID, deviceID string
	groups           map[string][]string
	groupTypes       []string // groups' keys in order, set by prepare
	time             int64
	results          []resultKey   // every result, for the canonical string
	flags            []exposedFlag // the exposed ones
	meta             []metaEntry   // their metadata, flags[i].meta[0]:[1]

	prepared  sync.Once // results and flags sorted, code and pow set
	code, pow uint32    // hashCode(canonical), 31^len(canonical)
}

// resultKey is one result as the canonical string spells it.
type resultKey struct{ flag, variant string }

type exposedFlag struct {
	key, variant, value string
	meta                [2]int32 // range in exposureRecord.meta
	hasMeta             bool     // the variant's Metadata was not nil
}

type metaEntry struct {
	k string
	v any
}

// newExposureRecord captures an evaluation, or returns nil when no flag is
// exposed: a flag is, unless its variant is a default one or its
// metadata.trackExposure is false.
func newExposureRecord(user *User, variants map[string]Variant, nowMs int64) *exposureRecord {
	m := 0
	for _, v := range variants {
		m += len(v.Metadata)
	}
	rec := &exposureRecord{
		userID: user.UserID, deviceID: user.DeviceID, time: nowMs,
		results: make([]resultKey, 0, len(variants)),
		flags:   make([]exposedFlag, 0, len(variants)),
		meta:    make([]metaEntry, 0, m),
	}
	for k, v := range variants {
		rec.results = append(rec.results, resultKey{k, v.Key})
		// One pass over the metadata copies it and reads the two keys
		// that decide exposure.
		lo, track, isDefault := len(rec.meta), true, false
		for mk, mv := range v.Metadata {
			switch mk {
			case "trackExposure":
				if b, ok := mv.(bool); ok && !b {
					track = false
				}
			case "default":
				isDefault, _ = mv.(bool)
			}
			rec.meta = append(rec.meta, metaEntry{mk, mv})
		}
		if !track || isDefault {
			rec.meta = rec.meta[:lo]
			continue
		}
		rec.flags = append(rec.flags, exposedFlag{
			key: k, variant: v.Key, value: v.Value,
			meta: [2]int32{int32(lo), int32(len(rec.meta))}, hasMeta: v.Metadata != nil,
		})
	}
	if len(rec.flags) == 0 {
		return nil
	}
	rec.groups = copyGroups(user.Groups)
	return rec
}

// prepare sorts the record and hashes its canonical string, once.
func (r *exposureRecord) prepare() { r.prepared.Do(r.digest) }

func (r *exposureRecord) digest() {
	r.code, r.pow = digestCanonical(r.userID, r.deviceID, r.results)
	r.results = nil
	slices.SortFunc(r.flags, func(a, b exposedFlag) int { return strings.Compare(a.key, b.key) })
	// Each flag's metadata in key order, the order JSON objects are
	// written in (appendEvent).
	for _, f := range r.flags {
		slices.SortFunc(r.meta[f.meta[0]:f.meta[1]], func(a, b metaEntry) int { return strings.Compare(a.k, b.k) })
	}
	if len(r.groups) > 0 {
		r.groupTypes = slices.Sorted(maps.Keys(r.groups))
	}
}

// AppendEvent appends the JSON of Event(i) with library to dst, for the
// analytics client's sender (analytics.Appender).
func (r *exposureRecord) AppendEvent(dst []byte, i int, library string) (out []byte, userID, deviceID string, err error) {
	w := jsonWriters.Get().(*jsonWriter)
	w.buf = dst
	userID, deviceID, err = r.appendEvent(w, i, library)
	out, w.buf = w.buf, nil
	jsonWriters.Put(w)
	return out, userID, deviceID, err
}

// appendEvent writes the JSON of Event(i) with library, without building
// it: the fields in analytics.Event's order, object keys sorted, as
// encoding/json writes them (TestExposureAppendEventIsEncodingJSON holds
// it to that).
func (r *exposureRecord) appendEvent(w *jsonWriter, i int, library string) (userID, deviceID string, err error) {
	r.prepare()
	f := &r.flags[i]
	meta := r.meta[f.meta[0]:f.meta[1]]
	label := f.variant
	if label == "" {
		label = f.value
	}
	mark := len(w.buf)
	w.raw(`{"event_type":"` + exposureEventType + `"`)
	if r.userID != "" {
		w.raw(`,"user_id":`)
		w.str(r.userID)
	}
	if r.deviceID != "" {
		w.raw(`,"device_id":`)
		w.str(r.deviceID)
	}
	if err := appendExposureProperties(w, f, meta, label); err != nil {
		w.buf = w.buf[:mark]
		return "", "", err
	}
	r.appendGroups(w)
	code := hashCodeAdd(hashCodeAdd(0, f.key), " ")*r.pow + r.code
	w.raw(`,"insert_id":`)
	if plainJSON(r.userID) && plainJSON(r.deviceID) {
		w.buf = append(appendInsertID(append(w.buf, '"'), r.userID, r.deviceID, code, r.time), '"')
	} else {
		w.str(insertID(r.userID, r.deviceID, code, r.time))
	}
	if r.time != 0 {
		w.raw(`,"time":`)
		w.buf = strconv.AppendInt(w.buf, r.time, 10)
	}
	if library != "" {
		w.raw(`,"library":`)
		w.str(library)
	}
	w.raw(`}`)
	return r.userID, r.deviceID, nil
}

// appendExposureProperties writes the event_properties and
// user_properties of flag f's exposure, whose variant shows as label.
func appendExposureProperties(w *jsonWriter, f *exposedFlag, meta []metaEntry, label string) error {
	var experimentKey, flagType string
	for _, e := range meta {
		switch e.k {
		case "experimentKey":
			experimentKey, _ = e.v.(string)
		case "flagType":
			flagType, _ = e.v.(string)
		}
	}
	// event_properties: its keys sort as Experiment Key, Flag Key,
	// Variant, metadata.
	w.raw(`,"event_properties":{`)
	if experimentKey != "" {
		w.raw(`"[Experiment] Experiment Key":`)
		w.str(experimentKey)
		w.raw(`,`)
	}
	w.raw(`"[Experiment] Flag Key":`)
	w.str(f.key)
	if label != "" {
		w.raw(`,"[Experiment] Variant":`)
		w.str(label)
	}
	if f.hasMeta {
		w.raw(`,"metadata":{`)
		for j, e := range meta {
			if j > 0 {
				w.raw(`,`)
			}
			w.str(e.k)
			w.raw(`:`)
			if err := w.value(e.v); err != nil {
				return err
			}
		}
		w.raw(`}`)
	}
	w.raw(`},"user_properties":{"$set":{`)
	if flagType != flagTypeMutualExclusionGroup && label != "" {
		if plainJSON(f.key) {
			w.raw(`"` + userPropertyPrefix)
			w.raw(f.key)
			w.raw(`"`)
		} else {
			w.str(userPropertyPrefix + f.key)
		}
		w.raw(`:`)
		w.str(label)
	}
	w.raw(`},"$unset":{}}`)
	return nil
}

// appendGroups writes the record's groups, if any, in group type order.
func (r *exposureRecord) appendGroups(w *jsonWriter) {
	if len(r.groups) == 0 {
		return
	}
	w.raw(`,"groups":{`)
	for j, g := range r.groupTypes {
		if j > 0 {
			w.raw(`,`)
		}
		w.str(g)
		w.raw(`:`)
		w.strings(r.groups[g])
	}
	w.raw(`}`)
}

// Event builds the i-th exposure event, in flag key order
// (analytics.Source).
func (r *exposureRecord) Event(i int) analytics.Event {
	r.prepare()
	f := &r.flags[i]
	var meta map[string]any
	if f.hasMeta {
		entries := r.meta[f.meta[0]:f.meta[1]]
		meta = make(map[string]any, len(entries))
		for _, e := range entries {
			meta[e.k] = e.v
		}
	}
	label := f.variant
	if label == "" {
		label = f.value
	}
	props := make(map[string]any, 4)
	props["[Experiment] Flag Key"] = f.key
	if label != "" {
		props["[Experiment] Variant"] = label
	}
	if ek, ok := meta["experimentKey"].(string); ok && ek != "" {
		props["[Experiment] Experiment Key"] = ek
	}
	if meta != nil {
		props["metadata"] = meta
	}
	set := make(map[string]any, 1)
	if ft, _ := meta["flagType"].(string); ft != flagTypeMutualExclusionGroup && label != "" {
		set[userPropertyPrefix+f.key] = label
	}
	// hashCode(flagKey + " " + canonical), from the canonical's own hash.
	code := hashCodeAdd(hashCodeAdd(0, f.key), " ")*r.pow + r.code
	return analytics.Event{
		EventType:       exposureEventType,
		UserID:          r.userID,
		DeviceID:        r.deviceID,
		EventProperties: props,
		UserProperties:  map[string]any{"$set": set, "$unset": map[string]any{}},
		Groups:          r.groups,
		InsertID:        insertID(r.userID, r.deviceID, code, r.time),
		Time:            r.time,
	}
}

// trackable reports whether events can be sent for user: Amplitude needs a
// user ID or a device ID.
func trackable(user *User) bool {
	return user != nil && (user.UserID != "" || user.DeviceID != "")
}

// insertID is "<user_id> <device_id> <code> <day>":
// missing IDs are empty strings, code is unsigned.
func insertID(userID, deviceID string, code uint32, nowMs int64) string {
	var buf [96]byte
	return string(appendInsertID(buf[:0], userID, deviceID, code, nowMs))
}

func appendInsertID(b []byte, userID, deviceID string, code uint32, nowMs int64) []byte {
	b = append(b, userID...)
	b = append(b, ' ')
	b = append(b, deviceID...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(code), 10)
	b = append(b, ' ')
	return strconv.AppendInt(b, floorDiv(nowMs, dayMillis), 10)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// copyGroups copies the user's groups so a caller that reuses its User
// cannot change events that are still queued.
func copyGroups(g map[string][]string) map[string][]string {
	if len(g) == 0 {
		return nil
	}
	out := make(map[string][]string, len(g))
	for k, v := range g {
		out[k] = slices.Clone(v)
	}
	return out
}

// digestCanonical sorts results by flag key and digests the canonical
// string without building it: user_id + " " + device_id
// + " " and, for each result, flagKey + " " + variant.key + " ", over UTF-8
// bytes (the Go SDK's form). It returns Amplitude's hashCode of the string
// and 31 to the power of its length, so that hashCode(prefix + canonical)
// can be derived from hashCode(prefix).
func digestCanonical(userID, deviceID string, results []resultKey) (code, pow uint32) {
	slices.SortFunc(results, func(a, b resultKey) int { return strings.Compare(a.flag, b.flag) })
	n := 0
	add := func(s string) {
		code = hashCodeAdd(code, s)
		n += len(s)
	}
	add(userID)
	add(" ")
	add(deviceID)
	add(" ")
	for _, r := range results {
		add(r.flag)
		add(" ")
		add(r.variant)
		add(" ")
	}
	return code, pow31(n)
}

// hashCodeAdd continues Amplitude's string hash h of a prefix over s.
// hashCode(s), the hash as the Go SDK computes it (h*31 + c over the UTF-8
// bytes, modulo 2^32, unsigned, as Amplitude's SDKs compute it), is hashCodeAdd(0, s), and
// hashCodeAdd(hashCode(a), b) == hashCode(a+b).
func hashCodeAdd(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h = h*31 + uint32(s[i])
	}
	return h
}

// pow31 is 31^n modulo 2^32.
func pow31(n int) uint32 {
	r, b := uint32(1), uint32(31)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r *= b
		}
		b *= b
	}
	return r
}
