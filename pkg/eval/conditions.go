package eval

// Conditions calls visit with each condition of the flags, in config
// order, read from the compiled records without decoding a flag: its
// selector, operator and values as configured. A Snapshot that keeps
// its document can so answer what its conditions target (a client looks
// for the cohorts its flags target) without decoding every flag. The
// Condition and what it holds are the Snapshot's, reused from call to call:
// visit must neither modify nor keep them (copy what it keeps).
func (s *Snapshot) Conditions(visit func(flagKey string, c *Condition)) {
	names := make(map[op]string, len(opNames))
	for name, o := range opNames {
		names[o] = name
	}
	var c Condition
	for fi := range s.flags {
		f := &s.flags[fi]
		for _, seg := range s.segments[f.segs.start:f.segs.end] {
			for ci := seg.conds.start; ci < seg.conds.end; ci++ {
				cr := &s.conds[ci]
				c.Selector = s.selectors[cr.sel].raw
				c.Op = names[cr.op]
				if cr.op == opUnknown {
					c.Op = s.unknownOps[int(ci)]
				}
				c.Values = s.vals[cr.vals : cr.vals+cr.n : cr.vals+cr.n]
				if cr.bits&condValuesNil != 0 {
					c.Values = nil
				}
				visit(f.key, &c)
			}
		}
	}
}
