package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"quartet.dev/quartet/internal/prose"
)

// wrapAt is the width findings are wrapped to.
const wrapAt = 100

// Text prints the report for people: one line per object, its findings
// indented below it, then what could not be read and a summary.
func (r Report) Text(w io.Writer) error {
	var b strings.Builder
	for _, e := range r.Objects {
		b.WriteString(e.line())
		b.WriteByte('\n')
		if e.Stuck != "" {
			b.WriteString(prose.Wrap("stuck: "+e.Stuck, "  ", "    ", wrapAt))
		}
		for _, f := range e.Findings {
			b.WriteString(prose.Wrap(fmt.Sprintf("%s %s: %s", f.Severity, f.Rule, f.Message), "  ", "    ", wrapAt))
			b.WriteString(prose.Wrap("fix: "+f.Fix, "    ", "      ", wrapAt))
		}
	}
	for _, p := range r.Problems {
		where := p.Where
		if where != "" {
			where += ": "
		}
		b.WriteString(prose.Wrap(fmt.Sprintf("%scannot read: %s", where, p.Error), "", "  ", wrapAt))
	}
	b.WriteString(r.Counts.summary())
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// JSON prints the report for programs.
func (r Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// line is the object's one line.
func (e Explained) line() string {
	name := e.Name
	if name == "" {
		name = "(unnamed)"
	}
	if e.Namespace != "" {
		name = e.Namespace + "/" + name
	}
	head := e.Kind + " " + name
	if e.Source != "" {
		head = e.Source + ": " + head
	}
	switch e.Reading {
	case readingNotWorkLd:
		return head + ": " + e.Identity
	case readingUnknown:
		return head + ": " + e.Reading + " (" + e.APIVersion + ")"
	}
	return head + ": " + e.Reading + " → " + e.Identity
}

func (c Counts) summary() string {
	s := fmt.Sprintf("%d object%s: %s, %s, %s", c.Objects, pluralS(c.Objects != 1),
		count(c.Errors, "error"), count(c.Warnings, "warning"), count(c.Notes, "note"))
	if c.Stuck > 0 {
		s += fmt.Sprintf(", %d stuck", c.Stuck)
	}
	if c.Problems > 0 {
		s += fmt.Sprintf("; %s could not be read", count(c.Problems, "input"))
	}
	return s
}

func count(n int, what string) string {
	return fmt.Sprintf("%d %s%s", n, what, pluralS(n != 1))
}
