package prose

import (
	"testing"
	"time"
)

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		text, first, rest string
		width             int
		want              string
	}{
		{"", "", "", 10, "\n"},
		{"one two three", "- ", "  ", 9, "- one two\n  three\n"},
		{"averyveryverylongword short", "", "", 5, "averyveryverylongword\nshort\n"},
		{"a b c", "", "", 80, "a b c\n"},
	} {
		if got := Wrap(c.text, c.first, c.rest, c.width); got != c.want {
			t.Errorf("Wrap(%q, %q, %q, %d) = %q, want %q", c.text, c.first, c.rest, c.width, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour:                  "1h",
		90 * time.Minute:           "1h30m",
		90 * time.Second:           "1m30s",
		2 * time.Minute:            "2m",
		45 * time.Second:           "45s",
		time.Hour + 30*time.Second: "1h0m30s",
		1500 * time.Millisecond:    "1.5s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
}
