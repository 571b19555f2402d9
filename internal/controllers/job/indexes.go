package job

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// span is a closed range [lo, hi] of completion indexes.
type span struct{ lo, hi int }

// indexSet is a set of completion indexes kept as sorted, disjoint,
// non-adjacent spans: the shape of status.completedIndexes and
// status.failedIndexes ("1,3-5,7").
type indexSet []span

// parseIndexSet reads the compressed form used in Job status and in
// successPolicy rules. Indexes at or above limit are dropped; malformed
// pieces are skipped, never fatal, because the text may come from a user.
// The second result reports whether anything was skipped.
func parseIndexSet(text string, limit int) (set indexSet, skipped bool) {
	if text == "" {
		return nil, false
	}
	for piece := range strings.SplitSeq(text, ",") {
		first, last, isRange := strings.Cut(piece, "-")
		if !isRange {
			last = first
		}
		lo, errLo := strconv.Atoi(first)
		hi, errHi := strconv.Atoi(last)
		if errLo != nil || errHi != nil || lo < 0 || hi < lo {
			skipped = true
			continue
		}
		if lo >= limit {
			// The pieces are written in increasing order; nothing further fits.
			break
		}
		set = set.addSpan(span{lo, min(hi, limit-1)})
	}
	return set, skipped
}

// addSpan returns the set with s added, keeping the spans merged, in O(1) at
// the end (the common case when parsing or when indexes arrive in order).
func (set indexSet) addSpan(s span) indexSet {
	n := len(set)
	if n == 0 || s.lo > set[n-1].hi+1 {
		return append(set, s)
	}
	if s.lo >= set[n-1].lo {
		set[n-1].hi = max(set[n-1].hi, s.hi)
		return set
	}
	return set.union(indexSet{s})
}

// union returns a new set holding the indexes of both sets.
func (set indexSet) union(other indexSet) indexSet {
	out := make(indexSet, 0, len(set)+len(other))
	i, j := 0, 0
	for i < len(set) || j < len(other) {
		var next span
		if j >= len(other) || (i < len(set) && set[i].lo <= other[j].lo) {
			next = set[i]
			i++
		} else {
			next = other[j]
			j++
		}
		if k := len(out) - 1; k >= 0 && next.lo <= out[k].hi+1 {
			out[k].hi = max(out[k].hi, next.hi)
		} else {
			out = append(out, next)
		}
	}
	return out
}

// withIndexes returns a new set holding the set's indexes and the given ones,
// which need not be sorted or distinct: it sorts them in place.
func (set indexSet) withIndexes(indexes []int) indexSet {
	slices.Sort(indexes)
	var added indexSet
	for _, ix := range indexes {
		added = added.addSpan(span{ix, ix})
	}
	return set.union(added)
}

// count is the number of indexes in the set.
func (set indexSet) count() (total int) {
	for _, s := range set {
		total += s.hi - s.lo + 1
	}
	return total
}

// has reports whether ix is in the set, by binary search over the spans.
func (set indexSet) has(ix int) bool {
	i := sort.Search(len(set), func(i int) bool { return set[i].hi >= ix })
	return i < len(set) && set[i].lo <= ix
}

// overlap is the number of indexes the two sets have in common.
func (set indexSet) overlap(other indexSet) int {
	return set.count() + other.count() - set.union(other).count()
}

// String writes the set the way the Job API stores it: spans of three or more
// as "a-b", a pair as "a,b", a single index as "a".
func (set indexSet) String() string {
	var b strings.Builder
	for _, s := range set {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s.lo))
		switch {
		case s.hi == s.lo+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(s.hi))
		case s.hi > s.lo+1:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s.hi))
		}
	}
	return b.String()
}

// firstMissing returns up to n indexes below limit that are not in the set,
// lowest first.
func (set indexSet) firstMissing(n, limit int) (out []int) {
	i := 0
	for next := 0; len(out) < n && next < limit; next++ {
		for i < len(set) && set[i].hi < next {
			i++
		}
		if i < len(set) && set[i].lo <= next {
			next = set[i].hi // the rest of the span is in the set too
		} else {
			out = append(out, next)
		}
	}
	return out
}
