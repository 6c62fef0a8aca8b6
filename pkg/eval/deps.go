package eval

import (
	"maps"
	"slices"
)

// dependencyOrder computes, once, the order in which all flags are evaluated:
// each flag after its dependencies, otherwise in config order (the reference
// walks a Go map here, so its order of independent flags is random). It also
// marks every flag whose dependencies reach a cycle.
func dependencyOrder(s *Snapshot) ([]int32, *CycleError) {
	first := markCycles(s)
	order := make([]int32, 0, len(s.flags))
	emitted := make([]bool, len(s.flags))
	var visit func(i int32)
	visit = func(i int32) {
		if emitted[i] {
			return
		}
		emitted[i] = true // set before the walk so a cycle cannot recurse forever
		for _, d := range s.depsOf(i) {
			visit(d)
		}
		order = append(order, i)
	}
	for i := range s.flags {
		visit(int32(i))
	}
	return order, first
}

// markCycles finds strongly connected components (Tarjan) and flags every
// flag on a cycle or depending on one. It returns the first cycle in config
// order, nil when there is none.
func markCycles(s *Snapshot) *CycleError {
	n := len(s.flags)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int32
	next := 0
	var first *CycleError
	var strong func(v int32)
	strong = func(v int32) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range s.depsOf(v) {
			if index[w] < 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var comp []int32
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp = append(comp, w)
			if w == v {
				break
			}
		}
		// Components complete dependencies first, so every dependency's
		// cyclic mark is final by now.
		var cyc *CycleError
		if len(comp) > 1 || slices.Contains(s.depsOf(v), v) {
			cyc = cyclePath(s, comp)
			if first == nil {
				first = cyc
			}
		}
		for _, w := range comp {
			s.flagCold[w].cyclic = cyc
			for _, d := range s.depsOf(w) {
				if cyc == nil && s.flagCold[d].cyclic != nil {
					cyc = s.flagCold[d].cyclic
				}
			}
		}
		for _, w := range comp {
			s.flagCold[w].cyclic = cyc
		}
	}
	for i := range s.flags {
		if index[i] < 0 {
			strong(int32(i))
		}
	}
	return first
}

// cyclePath names one cycle through the component, starting at its flag
// that comes first in the config.
func cyclePath(s *Snapshot, comp []int32) *CycleError {
	in := map[int32]bool{}
	for _, w := range comp {
		in[w] = true
	}
	start := slices.Min(comp)
	path := []string{s.flags[start].key}
	seen := map[int32]bool{start: true}
	for cur := start; ; {
		var next int32 = -1
		for _, d := range s.depsOf(cur) {
			if in[d] {
				next = d
				break
			}
		}
		if next < 0 || seen[next] {
			break
		}
		seen[next] = true
		path = append(path, s.flags[next].key)
		cur = next
	}
	s.problems = append(s.problems, Problem{Flag: path[0], Path: "flags", Kind: ProblemCycle,
		Message: (&CycleError{Flags: path}).Error()})
	return &CycleError{Flags: path}
}

// depsOf returns the known dependencies of flag i, in configured order.
func (s *Snapshot) depsOf(i int32) []int32 {
	d := s.flagCold[i].deps
	return s.deps[d.start:d.end]
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
