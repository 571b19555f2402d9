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

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	height := vg.Length(len(names))*3*bar + 2*vg.Inch
	return p.Save(9*vg.Inch, height, path)
}

func zeroIfNil(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
