package cmd

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/flagkit/experiment/internal/cli"
	"github.com/flagkit/experiment/internal/flagdiff"
)

// diffPrinter renders a diff for people: a block per flag (+ added, -
// removed, ~ changed), what was added green, removed red, a salt change
// loud; then the summary and, with --users, the impact.
type diffPrinter struct{ *textReport }

func newDiffPrinter(ios *cli.IOStreams) *diffPrinter { return &diffPrinter{newTextReport(ios)} }

func (p *diffPrinter) print(w io.Writer, d *diffOutput) error {
	for _, f := range d.Flags {
		p.flag(f)
	}
	if len(d.Flags) > 0 {
		p.blank()
	}
	s := d.Summary
	if !d.Changed {
		verb := "mean"
		if s.After == 1 {
			verb = "means"
		}
		p.line(0, "no changes: the %s in %s and %s %s the same", plural(s.After, "flag"), d.Old, d.New, verb)
	} else {
		p.line(0, "%d changed, %d added, %d removed, %d unchanged (%s in %s, %d in %s)",
			s.Changed, s.Added, s.Removed, s.Unchanged, plural(s.Before, "flag"), d.Old, s.After, d.New)
	}
	if d.Impact != nil {
		p.impact(d.Impact)
	}
	return p.writeTo(w)
}

func (p *diffPrinter) flag(f *flagdiff.Flag) {
	sc := p.scheme
	switch f.Change {
	case flagdiff.Added:
		p.line(0, "%s %s %s", sc.Matched("+"), sc.Key(f.Key), sc.Matched(strings.TrimSpace(f.To+" added")))
	case flagdiff.Removed:
		p.line(0, "%s %s %s", sc.Failed("-"), sc.Key(f.Key), sc.Failed(strings.TrimSpace(f.From+" removed")))
	default:
		head := "~ " + sc.Key(f.Key)
		if v := versions(f.From, f.To); v != "" {
			head += " " + v
		}
		p.line(0, "%s", head)
	}
	if f.Change != flagdiff.Changed {
		p.line(1, "%s", sc.Dimmed(plural(len(f.Variants), "variant")+", "+plural(len(f.Segments), "segment")))
		return
	}
	p.changes(f)
}

// changes is the body of a changed flag's block, indented under its
// header; watch prints it under its change line.
func (p *diffPrinter) changes(f *flagdiff.Flag) {
	sc := p.scheme
	if f.Rebuckets {
		p.line(1, "%s", sc.Warning("!! RE-BUCKETED: a salt or bucketing selector changed; every user of that segment is hashed anew and may change variant"))
	}
	for _, m := range f.Metadata {
		if m.Key != "flagVersion" {
			p.metadata(1, m)
		}
	}
	for _, v := range f.Variants {
		p.variant(v)
	}
	for _, s := range f.Segments {
		p.segment(s)
	}
	if d := f.Dependencies; d != nil {
		var parts []string
		for _, k := range d.Added {
			parts = append(parts, sc.Matched("+"+k))
		}
		for _, k := range d.Removed {
			parts = append(parts, sc.Failed("-"+k))
		}
		p.line(1, "dependencies: %s", strings.Join(parts, " "))
	}
}

func versions(from, to string) string {
	switch {
	case from == to && from != "":
		return from + " (same version)"
	case from == "" && to == "":
		return ""
	}
	return orNone(from) + " → " + orNone(to)
}

func (p *diffPrinter) metadata(indent int, m *flagdiff.ValueChange) {
	text := fmt.Sprintf("%s: %s → %s", m.Key, flagdiff.ScalarText(m.From), flagdiff.ScalarText(m.To))
	if m.Key == "deployed" {
		text = p.scheme.Strong(text)
	}
	p.line(indent, "%s", text)
}

func (p *diffPrinter) variant(v *flagdiff.VariantChange) {
	sc := p.scheme
	switch v.Change {
	case flagdiff.Added:
		p.line(1, "%s", sc.Matched("+ variant "+v.Key))
	case flagdiff.Removed:
		p.line(1, "%s", sc.Failed("- variant "+v.Key))
		return
	default:
		p.line(1, "~ variant %s", v.Key)
	}
	if v.Value != nil {
		p.line(2, "value: %s → %s", jsonOrNone(v.Value.From), jsonOrNone(v.Value.To))
	}
	if v.Payload != nil {
		p.line(2, "payload: %s → %s", jsonOrNone(v.Payload.From), jsonOrNone(v.Payload.To))
	}
	for _, m := range v.Metadata {
		p.line(2, "metadata %s: %s → %s", m.Key, jsonOrNone(m.From), jsonOrNone(m.To))
	}
	if k := v.ServedKey; k != nil {
		p.line(2, "served key (what evaluation returns): %s → %s", jsonOrNone(k.From), jsonOrNone(k.To))
	}
}

func jsonOrNone(v any) string {
	if v == nil {
		return "(none)"
	}
	return jsonText(v)
}

func (p *diffPrinter) segment(s *flagdiff.SegmentChange) {
	sc := p.scheme
	title := s.Title()
	switch s.Change {
	case flagdiff.Added:
		p.line(1, "%s", sc.Matched(fmt.Sprintf("+ %s (at %d)", title, *s.To)))
	case flagdiff.Removed:
		p.line(1, "%s", sc.Failed(fmt.Sprintf("- %s (was %d)", title, *s.From)))
	case flagdiff.Moved:
		p.line(1, "%s", sc.Warning(fmt.Sprintf("↕ %s moved %d → %d", title, *s.From, *s.To)))
		return
	default:
		head := "~ " + title
		if s.Moved {
			head += sc.Warning(fmt.Sprintf(" (moved %d → %d)", *s.From, *s.To))
		}
		p.line(1, "%s", head)
	}
	for _, c := range s.Conditions {
		mark, text := sc.Failed("- "), sc.Failed(c.Condition)
		if c.Change == flagdiff.Added {
			mark, text = sc.Matched("+ "), sc.Matched(c.Condition)
		}
		p.line(2, "%scondition %s", mark, text+sc.Dimmed(" (group "+strconv.Itoa(c.Group)+")"))
	}
	// An added or removed segment without a variant would read
	// "(none) → (none)": nothing to say.
	if v := s.Variant; v != nil && flagdiff.VariantName(v.From) != flagdiff.VariantName(v.To) {
		p.line(2, "variant: %s → %s", flagdiff.VariantName(v.From), flagdiff.VariantName(v.To))
	}
	if b := s.Bucket; b != nil {
		p.hashing(b, "salt", b.Salt)
		p.hashing(b, "bucketing by", b.Selector)
		if b.Allocations != nil {
			p.line(2, "allocations: %s → %s", flagdiff.ScalarText(b.Allocations.From), flagdiff.ScalarText(b.Allocations.To))
		}
	}
	p.shares(2, s.Shares)
	for _, m := range s.Metadata {
		p.metadata(2, m)
	}
}

// hashing prints a salt or selector change: loudly when users hashed
// before are hashed anew, plainly when a bucket is given or taken away.
func (p *diffPrinter) hashing(b *flagdiff.BucketChange, what string, c *flagdiff.ValueChange) {
	if c == nil {
		return
	}
	change := flagdiff.ScalarText(c.From) + " → " + flagdiff.ScalarText(c.To)
	if !b.Rebuckets {
		p.line(2, "%s: %s", what, change)
		return
	}
	p.line(2, "%s", p.scheme.Warning("!! "+what+" "+change+": every user is re-bucketed"))
}

// shares prints each variant's share before and after with the points it
// gains (green) or loses (red).
func (p *diffPrinter) shares(indent int, shares []*flagdiff.Share) {
	if len(shares) == 0 {
		return
	}
	width := 0
	for _, s := range shares {
		width = max(width, len(orNone(s.Variant)))
	}
	for _, s := range shares {
		delta := fmt.Sprintf("%+.2f pp", s.Delta)
		switch {
		case s.Delta > 0:
			delta = p.scheme.Matched(delta)
		case s.Delta < 0:
			delta = p.scheme.Failed(delta)
		default:
			delta = p.scheme.Dimmed(delta)
		}
		p.line(indent, "share %-*s %6.2f%% → %6.2f%%  %s", width, orNone(s.Variant), s.From, s.To, delta)
	}
}

func (p *diffPrinter) impact(im *diffImpact) {
	sc := p.scheme
	p.blank()
	p.line(0, "%s", sc.Strong("Impact on "+plural(im.Users, "user")+":"))
	if len(im.Flags) == 0 {
		p.line(1, "nobody changes variant")
	}
	for _, f := range im.Flags {
		verb := "change"
		if f.UsersChanged == 1 {
			verb = "changes"
		}
		head := fmt.Sprintf("%s: %s %s variant (%.2f%%)", sc.Key(f.Key), plural(f.UsersChanged, "user"), verb, f.Share)
		if f.UsersNewValue > 0 {
			head += fmt.Sprintf(", %d keep theirs with a new value or payload", f.UsersNewValue)
		}
		if len(f.Reasons) > 0 {
			head += "; " + strings.Join(f.Reasons, "; ")
		}
		p.line(1, "%s", head)
		for _, t := range f.Matrix {
			if t.From == t.To {
				continue
			}
			line := fmt.Sprintf("%s → %s: %d", orNone(t.From), orNone(t.To), t.Users)
			if len(t.Examples) > 0 {
				line += sc.Dimmed("  e.g. " + strings.Join(t.Examples, ", "))
			}
			p.line(2, "%s", line)
		}
		if f.UsersChanged > 0 {
			p.shares(2, f.Shares)
		}
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
