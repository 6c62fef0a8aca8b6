package cmd

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line progress bar on a terminal's stderr while a
// batch runs, and erases it when done. A nil *progress does nothing.
type progress struct {
	w       io.Writer
	total   int64
	color   bool
	done    atomic.Int64
	stop    chan struct{}
	stopped sync.WaitGroup
	start   time.Time
}

func newProgress(w io.Writer, total int64, color bool) *progress {
	p := &progress{w: w, total: total, color: color, stop: make(chan struct{}), start: time.Now()}
	p.stopped.Add(1)
	go p.loop()
	return p
}

func (p *progress) add(n int) {
	if p != nil {
		p.done.Add(int64(n))
	}
}

func (p *progress) loop() {
	defer p.stopped.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	done := p.done.Load()
	elapsed := time.Since(p.start).Seconds()
	rate := float64(done) / max(elapsed, 0.001) / (1 << 20)
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r\033[Kevaluating: %.1f MiB read (%.1f MiB/s)", float64(done)/(1<<20), rate)
		return
	}
	frac := min(float64(done)/float64(p.total), 1)
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	fmt.Fprintf(p.w, "\r\033[Kevaluating %s %3.0f%% (%.1f MiB/s)", bar, frac*100, rate)
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.stopped.Wait()
}
