package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Printer writes events as JSON Lines instead of sending them, for a
// dry run, a test, or a pipeline of one's own: set as
// experiment.ExposureConfig.Printer (or AssignmentConfig.Printer), it
// receives what the service would send, with the de-duplication decision:
//
//	{"event":{"event_type":"[Experiment] Exposure",...},"deduplicated":false}
//
// An event with "deduplicated":true would not have been sent. It is safe
// for concurrent use, so the exposure and assignment services can share
// one; each line is one Write. After a write error it writes nothing more
// and Err reports the error.
type Printer struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewPrinter returns a printer writing to w.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w} }

// printedEvent is one line of Printer output.
type printedEvent struct {
	Event        Event `json:"event"`
	Deduplicated bool  `json:"deduplicated"`
}

// Print writes one event.
func (p *Printer) Print(ev Event, deduplicated bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(printedEvent{Event: ev, Deduplicated: deduplicated}); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		p.err = fmt.Errorf("printing events: %w", err)
	}
	return p.err
}

// Err is the first write error, if any.
func (p *Printer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
