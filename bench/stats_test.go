package bench

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := map[string]struct {
		in   []float64
		want float64
	}{
		"none":         {nil, math.NaN()},
		"one":          {[]float64{3}, 3},
		"odd":          {[]float64{5, 1, 3}, 3},
		"even":         {[]float64{4, 1, 3, 2}, 2.5},
		"with repeats": {[]float64{2, 2, 9}, 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			got := Median(tc.in)
			if !sameFloat(got, tc.want) {
				t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("Median reordered its input: %v", tc.in)
				}
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	thousand := make([]float64, 1000)
	for i := range thousand {
		thousand[i] = float64(i + 1)
	}
	tests := map[string]struct {
		in   []float64
		p    float64
		want float64
	}{
		"none":               {nil, 50, math.NaN()},
		"p0 is meaningless":  {[]float64{1}, 0, math.NaN()},
		"p above 100":        {[]float64{1}, 101, math.NaN()},
		"one value":          {[]float64{7}, 99, 7},
		"p50 of 100":         {hundred, 50, 50},
		"p99 of 100":         {hundred, 99, 99},
		"p100 is the max":    {hundred, 100, 100},
		"p99 of 1000":        {thousand, 99, 990},
		"p50 of 4 rounds up": {[]float64{10, 20, 30, 40}, 50, 20},
		"p1 of 1000":         {thousand, 1, 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Percentile(tc.in, tc.p); !sameFloat(got, tc.want) {
				t.Errorf("Percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := map[string]struct {
		a, b, want float64
	}{
		"faster":        {1, 2, 0.5},
		"slower":        {3, 2, 1.5},
		"zero below":    {1, 0, math.NaN()},
		"zero above":    {0, 4, 0},
		"unknown above": {math.NaN(), 1, math.NaN()},
		"unknown below": {1, math.NaN(), math.NaN()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Ratio(tc.a, tc.b); !sameFloat(got, tc.want) {
				t.Errorf("Ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestQuartiles(t *testing.T) {
	start := time.Unix(1000, 0)
	var seen []Seen[int]
	for i := 1; i <= 8; i++ {
		seen = append(seen, Seen[int]{Obj: i, At: start.Add(time.Duration(i) * time.Second)})
	}
	if got, want := Quartiles(seen, start), "25% 2.00s, 50% 4.00s, 75% 6.00s, 100% 8.00s (of 8)"; got != want {
		t.Errorf("Quartiles = %q, want %q", got, want)
	}
	if got := Quartiles[int](nil, start); got != "none" {
		t.Errorf("Quartiles of nothing = %q", got)
	}
}
