package analytics

// Event is one analytics event in the form Amplitude's HTTP V2 API takes.
// Fields are encoded in this order, empty ones omitted; the maps are
// encoded with sorted keys, so an Event always encodes to the same bytes.
// The device fields between Groups and InsertID describe where the event
// happened (Amplitude Experiment sets them on assignment events with
// evaluated properties).
type Event struct {
	EventType       string              `json:"event_type"`
	UserID          string              `json:"user_id,omitempty"`
	DeviceID        string              `json:"device_id,omitempty"`
	EventProperties map[string]any      `json:"event_properties,omitempty"`
	UserProperties  map[string]any      `json:"user_properties,omitempty"`
	Groups          map[string][]string `json:"groups,omitempty"`

	Country            string `json:"country,omitempty"`
	Region             string `json:"region,omitempty"`
	City               string `json:"city,omitempty"`
	DMA                string `json:"dma,omitempty"`
	Language           string `json:"language,omitempty"`
	Platform           string `json:"platform,omitempty"`
	AppVersion         string `json:"app_version,omitempty"`
	OSName             string `json:"os_name,omitempty"`
	DeviceBrand        string `json:"device_brand,omitempty"`
	DeviceManufacturer string `json:"device_manufacturer,omitempty"`
	DeviceModel        string `json:"device_model,omitempty"`
	Carrier            string `json:"carrier,omitempty"`
	IP                 string `json:"ip,omitempty"`

	// InsertID lets Amplitude drop a duplicate of the event (per device,
	// within 7 days).
	InsertID string `json:"insert_id,omitempty"`
	// Time is when the event happened, in Unix milliseconds.
	Time int64 `json:"time,omitempty"`
	// Library names the sender; a Client fills it in when empty.
	Library string `json:"library,omitempty"`
}

// Source is events built on demand (Client.TrackSource): what is queued is
// the source and an index, and a sender builds event i only when it
// encodes it, on the sender's goroutine. Event may be called from several
// senders at once, and more than once for an event.
type Source interface {
	Event(i int) Event
}

// Appender is a Source that writes its events' JSON itself, without
// building them: their maps, then reflection, were most of the cost of
// sending exposures. AppendEvent appends to dst exactly what encoding/json
// (without HTML escaping) writes for Event(i) with Library set to library
// when it is empty, and returns the extended slice and the event's IDs.
// When it fails, what it appended is discarded and the event given up.
type Appender interface {
	Source
	AppendEvent(dst []byte, i int, library string) (out []byte, userID, deviceID string, err error)
}

// plainEvents are events given to Track.
type plainEvents []Event

func (p *plainEvents) Event(i int) Event { return (*p)[i] }
