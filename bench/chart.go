package bench

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteChart draws a horizontal bar chart of the time and API-request
// ratios (quartet/upstream) of the rows that have either, with a line at
// 1: bars left of it are where quartet does better. Rows measured in one
// mode only have no bars.
func WriteChart(path string, rows []Row, title string) error {
	var names []string
	var timeRatios, apiRatios plotter.Values
	// NominalY counts from the bottom; list the rows top to bottom.
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		if r.Ratio == nil && r.APIRequestsRatio == nil {
			continue
		}
		names = append(names, r.Scenario)
		timeRatios = append(timeRatios, zeroIfNil(r.Ratio))
		apiRatios = append(apiRatios, zeroIfNil(r.APIRequestsRatio))
	}
	if len(names) == 0 {
		return fmt.Errorf("no ratios to chart")
	}
	// Empty rows on top keep the legend off the first bars.
	names = append(names, "", "")
	timeRatios = append(timeRatios, 0, 0)
	apiRatios = append(apiRatios, 0, 0)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "quartet / upstream (lower is better)"
	p.X.Min = 0
	const bar = vg.Length(7)
	timeBars, err := plotter.NewBarChart(timeRatios, bar)
	if err != nil {
		return err
	}
	timeBars.Horizontal = true
	timeBars.Offset = bar / 2
	timeBars.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	timeBars.LineStyle.Width = 0
	apiBars, err := plotter.NewBarChart(apiRatios, bar)
	if err != nil {
		return err
	}
	apiBars.Horizontal = true
	apiBars.Offset = -bar / 2
	apiBars.Color = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	apiBars.LineStyle.Width = 0
	p.Add(timeBars, apiBars)
	p.Legend.Add("time (or memory)", timeBars)
	p.Legend.Add("API requests", apiBars)
	p.Legend.Top = true

	maxX := 1.2
	for i := range timeRatios {
		maxX = max(maxX, timeRatios[i]*1.05, apiRatios[i]*1.05)
	}
	p.X.Max = maxX
	one, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(names)) - 0.5}})
	if err != nil {
		return err
	}
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	one.Color = color.Gray{Y: 0x40}
	p.Add(one)
	p.NominalY(names...)
	p.Add(plotter.NewGrid())
	return savePlot(p, path, vg.Length(len(names))*3*bar)
}

// savePlot writes p as a PNG 9 inches wide, bars high plus room for the
// title and the axis.
func savePlot(p *plot.Plot, path string, bars vg.Length) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.Save(9*vg.Inch, bars+2*vg.Inch, path)
}

func zeroIfNil(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// breakdownColors tell the components apart in the breakdown chart; the
// last one is for the rest.
var breakdownColors = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, {R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, {R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff}, {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// WriteBreakdownChart draws where a pod's CPU went: for each row with a
// breakdown, the quartet process's CPU milliseconds per pod in each mode,
// stacked by component (the largest ones, the others as "the rest").
func WriteBreakdownChart(path string, rows []Row, title string) error {
	type bar struct {
		name string
		ms   map[string]float64
	}
	var bars []bar
	total := map[string]float64{}
	for _, r := range rows {
		if r.Breakdown == nil {
			continue
		}
		for _, mode := range []Mode{ModeQuartet, ModeUpstream} {
			cpu := r.Breakdown.CPUSeconds[mode]
			if len(cpu) == 0 {
				continue
			}
			ms := map[string]float64{}
			for k, v := range cpu {
				ms[k] = v * 1000 / float64(max(r.Breakdown.Pods, 1))
				total[k] += ms[k]
			}
			bars = append(bars, bar{name: fmt.Sprintf("%s (%s)", r.Scenario, mode), ms: ms})
		}
	}
	if len(bars) == 0 {
		return fmt.Errorf("no breakdowns to chart")
	}
	components := largestFirst(total)
	shown := components[:min(len(components), len(breakdownColors)-1)]
	rest := components[len(shown):]

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "CPU milliseconds per pod, all of the quartet process, by component"
	p.X.Min = 0
	const width = vg.Length(12)
	// NominalY counts from the bottom: list the bars top to bottom, under
	// empty rows that keep the legend (a line per component) off the bars.
	names := []string{}
	for i := len(bars) - 1; i >= 0; i-- {
		names = append(names, bars[i].name)
	}
	for range (len(shown) + 2) / 2 {
		names = append(names, "")
	}
	values := func(get func(bar) float64) plotter.Values {
		vs := make(plotter.Values, len(names))
		for i := range bars {
			vs[len(bars)-1-i] = get(bars[i])
		}
		return vs
	}
	var below *plotter.BarChart
	add := func(label string, c color.Color, vs plotter.Values) error {
		b, err := plotter.NewBarChart(vs, width)
		if err != nil {
			return err
		}
		b.Horizontal = true
		b.Color = c
		b.LineStyle.Width = 0
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(label, b)
		return nil
	}
	for i, k := range shown {
		if err := add(k, breakdownColors[i], values(func(b bar) float64 { return b.ms[k] })); err != nil {
			return err
		}
	}
	if len(rest) > 0 {
		sum := func(b bar) float64 {
			var s float64
			for _, k := range rest {
				s += b.ms[k]
			}
			return s
		}
		if err := add("the rest", breakdownColors[len(breakdownColors)-1], values(sum)); err != nil {
			return err
		}
	}
	for _, b := range bars {
		var sum float64
		for _, v := range b.ms {
			sum += v
		}
		p.X.Max = max(p.X.Max, sum*1.05)
	}
	p.Legend.Top = true
	p.NominalY(names...)
	p.Add(plotter.NewGrid())
	return savePlot(p, path, vg.Length(len(names))*2*width)
}
