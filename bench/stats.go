package bench

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Median is the middle of xs (the mean of the two middle values for an even
// count); NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := sorted(xs)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile is the nearest-rank p-th percentile of xs (0 < p <= 100): the
// smallest value such that at least p% of xs are at or below it, so p99 of
// 1,000 lags is the 990th smallest. NaN for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := sorted(xs)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// Ratio is a/b, or NaN when it means nothing (b is zero or either is NaN).
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

func sorted(xs []float64) []float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s
}

// Quartiles says when a quarter, half, three quarters and all of the seen
// objects had arrived, in seconds after start: the shape of a burst (a
// stall between batches shows as a gap).
func Quartiles[T any](seen []Seen[T], start time.Time) string {
	if len(seen) == 0 {
		return "none"
	}
	xs := make([]float64, len(seen))
	for i, s := range seen {
		xs[i] = s.At.Sub(start).Seconds()
	}
	return fmt.Sprintf("25%% %.2fs, 50%% %.2fs, 75%% %.2fs, 100%% %.2fs (of %d)",
		Percentile(xs, 25), Percentile(xs, 50), Percentile(xs, 75), Percentile(xs, 100), len(xs))
}
