package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Unit is what a progress bar counts.
type Unit int

const (
	// Items are counted one by one (cohorts downloaded): the bar is drawn
	// at each, "3/6".
	Items Unit = iota
	// Bytes are counted as they are read: far more often than a terminal
	// can show, so the bar is drawn five times a second, with the rate.
	Bytes
)

// Progress is a one-line bar on a terminal's stderr while work runs,
// erased when it ends. A nil *Progress does nothing, so that work runs the
// same whether a bar is shown or not.
type Progress struct {
	w     io.Writer
	label string
	total int64 // 0: unknown (stdin)
	unit  Unit
	start time.Time
	done  atomic.Int64

	mu       sync.Mutex // one line drawn at a time
	stop     chan struct{}
	stopOnce sync.Once
	ticker   sync.WaitGroup
}

// drawEvery is how often a Bytes bar is redrawn.
const drawEvery = 200 * time.Millisecond

// barCells is the width of the bar itself.
const barCells = 20

// NewProgress returns a bar for stderr, or nil when stderr cannot show one
// (ProgressErr): it says label, and how much of total is done.
func (s *IOStreams) NewProgress(label string, total int64, unit Unit) *Progress {
	if !s.ProgressErr() {
		return nil
	}
	return NewProgress(s.ErrOut, label, total, unit)
}

// NewProgress starts a bar on w, which must be a terminal.
func NewProgress(w io.Writer, label string, total int64, unit Unit) *Progress {
	p := &Progress{w: w, label: label, total: total, unit: unit, start: time.Now(), stop: make(chan struct{})}
	if unit == Items {
		p.draw()
		return p
	}
	p.ticker.Add(1)
	go p.tick()
	return p
}

// Add counts n more items or bytes done. It may be called from any
// goroutine.
func (p *Progress) Add(n int64) {
	if p == nil {
		return
	}
	p.done.Add(n)
	if p.unit == Items {
		p.draw()
	}
}

// CountReads returns r counting the bytes read from it into the bar; r
// itself when there is no bar.
func (p *Progress) CountReads(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

// Finish erases the bar; nothing is drawn after it returns.
func (p *Progress) Finish() {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.stop) })
	p.ticker.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}

func (p *Progress) tick() {
	defer p.ticker.Done()
	t := time.NewTicker(drawEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *Progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
		return // finished: the line is erased, and stays so
	default:
	}
	fmt.Fprint(p.w, "\r\033[K"+p.line())
}

// line is what the bar says now.
func (p *Progress) line() string {
	done := p.done.Load()
	if p.unit == Items {
		return fmt.Sprintf("%s %s %d/%d", p.label, bar(done, p.total), done, p.total)
	}
	const mib = 1 << 20
	rate := float64(done) / max(time.Since(p.start).Seconds(), 0.001) / mib
	if p.total <= 0 {
		return fmt.Sprintf("%s: %.1f MiB read (%.1f MiB/s)", p.label, float64(done)/mib, rate)
	}
	frac := min(float64(done)/float64(p.total), 1)
	return fmt.Sprintf("%s %s %3.0f%% (%.1f MiB/s)", p.label, bar(done, p.total), frac*100, rate)
}

// bar is done of total as barCells cells, full ones first.
func bar(done, total int64) string {
	filled := int(barCells * min(done, max(total, 1)) / max(total, 1))
	return strings.Repeat("█", filled) + strings.Repeat("░", barCells-filled)
}

// countingReader counts what is read through it into a bar.
type countingReader struct {
	r io.Reader
	p *Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.done.Add(int64(n))
	return n, err
}
