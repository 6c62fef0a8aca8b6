package eval

import "bytes"

// The JSON field names of each schema type, in the order of the field
// indices the fast decoder switches on.
var (
	flagFields         = []string{"key", "variants", "segments", "dependencies", "metadata"}
	variantFields      = []string{"key", "value", "payload", "metadata"}
	segmentFields      = []string{"bucket", "conditions", "variant", "metadata"}
	conditionFields    = []string{"selector", "op", "values"}
	bucketFields       = []string{"selector", "salt", "allocations"}
	allocationFields   = []string{"range", "distributions"}
	distributionFields = []string{"variant", "range"}
)

// field returns the index of key among names, or -1 for a key that
// encoding/json ignores. A field given twice, which encoding/json would
// merge, and a key that matches a name only case-insensitively, which it
// would accept, fail.
func (d *fastDecoder) field(key []byte, names []string, seen *uint8) int {
	for i, n := range names {
		if string(key) == n {
			if *seen&(1<<i) != 0 {
				d.fail()
				return -1
			}
			*seen |= 1 << i
			return i
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			d.fail()
		}
	}
	return -1
}

// flag reads a flag object; nil for null.
func (d *fastDecoder) flag() *Flag {
	f := d.mem.flags.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, flagFields, &seen) {
		case 0:
			f.Key = d.str()
		case 1:
			f.Variants = d.variants()
		case 2:
			f.Segments = d.segments()
		case 3:
			f.Dependencies = d.strings()
		case 4:
			f.Metadata = d.anyMap()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return f
}

func (d *fastDecoder) variants() map[string]*Variant {
	var m map[string]*Variant
	if d.object(func(key []byte) {
		if m == nil {
			m = make(map[string]*Variant, 4)
		}
		k := d.intern(key)
		m[k] = d.variant()
	}) && m == nil {
		m = map[string]*Variant{}
	}
	return m
}

func (d *fastDecoder) variant() *Variant {
	v := d.mem.variants.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, variantFields, &seen) {
		case 0:
			v.Key = d.str()
		case 1:
			v.Value = d.value()
		case 2:
			v.Payload = d.value()
		case 3:
			v.Metadata = d.anyMap()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return v
}

func (d *fastDecoder) segments() []*Segment {
	return collect(d, &d.mem.segScratch, &d.mem.segmentLists, d.segment)
}

func (d *fastDecoder) segment() *Segment {
	s := d.mem.segments.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, segmentFields, &seen) {
		case 0:
			s.Bucket = d.bucket()
		case 1:
			s.Conditions = d.conditions()
		case 2:
			s.Variant = d.str()
		case 3:
			s.Metadata = d.anyMap()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return s
}

// conditions reads the OR of AND-groups; null, [] and [[]] stay distinct.
func (d *fastDecoder) conditions() [][]*Condition {
	return collect(d, &d.mem.groupScratch, &d.mem.groupLists, func() []*Condition {
		return collect(d, &d.mem.condScratch, &d.mem.conditionLists, d.condition)
	})
}

func (d *fastDecoder) condition() *Condition {
	c := d.mem.conditions.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, conditionFields, &seen) {
		case 0:
			c.Selector = d.strings()
		case 1:
			c.Op = d.str()
		case 2:
			c.Values = d.strings()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return c
}

func (d *fastDecoder) bucket() *Bucket {
	b := d.mem.buckets.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, bucketFields, &seen) {
		case 0:
			b.Selector = d.strings()
		case 1:
			b.Salt = d.str()
		case 2:
			b.Allocations = d.allocations()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return b
}

func (d *fastDecoder) allocations() []*Allocation {
	return collect(d, &d.mem.allocScratch, &d.mem.allocLists, d.allocation)
}

func (d *fastDecoder) allocation() *Allocation {
	a := d.mem.allocations.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, allocationFields, &seen) {
		case 0:
			a.Range = d.uints()
		case 1:
			a.Distributions = d.distributions()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return a
}

func (d *fastDecoder) distributions() []*Distribution {
	return collect(d, &d.mem.distScratch, &d.mem.distLists, d.distribution)
}

func (d *fastDecoder) distribution() *Distribution {
	x := d.mem.distributions.new()
	var seen uint8
	if !d.object(func(key []byte) {
		switch d.field(key, distributionFields, &seen) {
		case 0:
			x.Variant = d.str()
		case 1:
			x.Range = d.uints()
		default:
			d.skip()
		}
	}) {
		return nil
	}
	return x
}
