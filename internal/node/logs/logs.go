// Package logs writes and reads container logs in the CRI log format that
// kubelets use, one record per line:
//
//	2024-01-02T03:04:05.123456789Z stdout F hello
//
// where the third field is F for a full line and P for a partial one (a line
// longer than the copy buffer). Keeping the timestamp of every line is what
// makes `kubectl logs --timestamps` and `--since` work.
package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Stream names as they appear in the log file.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// maxLine is the longest line written as one record; longer lines are split
// into partial (P) records.
const maxLine = 16 * 1024

// Writer appends records to one log file. It is safe for concurrent use by
// the stdout and stderr copiers of one container.
type Writer struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	f     *os.File
}

// Create opens (creating or truncating) the log file at path.
func Create(path string, c clock.PassiveClock) (*Writer, error) {
	if c == nil {
		c = clock.RealClock{}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &Writer{clock: c, f: f}, nil
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// WriteRecord appends one record; line must not contain a newline.
func (w *Writer) WriteRecord(stream string, partial bool, line []byte) error {
	tag := " F "
	if partial {
		tag = " P "
	}
	buf := make([]byte, 0, len(line)+64)
	buf = w.clock.Now().UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, tag...)
	buf = append(buf, line...)
	buf = append(buf, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.f.Write(buf)
	return err
}

// Copy reads r until EOF and writes what it reads as records of stream. A
// trailing line without a newline is written as a full record at EOF.
func (w *Writer) Copy(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if werr := w.WriteRecord(stream, false, line[:len(line)-1]); werr != nil {
				return werr
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if werr := w.WriteRecord(stream, true, line); werr != nil {
				return werr
			}
		default:
			if len(line) > 0 {
				if werr := w.WriteRecord(stream, false, line); werr != nil {
					return werr
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// Record is one parsed log record.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	Line    []byte
}

// ParseRecord parses one line of a CRI log file (without its newline).
func ParseRecord(b []byte) (Record, error) {
	var r Record
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return r, errors.New("log record: no timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return r, err
	}
	r.Time = t
	b = b[i+1:]
	i = bytes.IndexByte(b, ' ')
	if i < 0 {
		return r, errors.New("log record: no stream")
	}
	r.Stream = string(b[:i])
	b = b[i+1:]
	if len(b) < 1 {
		return r, errors.New("log record: no tag")
	}
	r.Partial = b[0] == 'P'
	if len(b) >= 2 {
		r.Line = b[2:]
	}
	return r, nil
}

// Options are the kubelet containerLogs query options that shape the output.
type Options struct {
	Follow     bool
	Timestamps bool
	// TailLines, when set, starts the output that many lines before the end.
	TailLines *int64
	// LimitBytes, when set, stops the output after that many bytes.
	LimitBytes *int64
	// Since drops records older than this time.
	Since *time.Time
	// Stream is "", "All", "Stdout" or "Stderr".
	Stream string
}

func (o Options) wants(r Record) bool {
	switch o.Stream {
	case "Stdout":
		if r.Stream != Stdout {
			return false
		}
	case "Stderr":
		if r.Stream != Stderr {
			return false
		}
	}
	return o.Since == nil || !r.Time.Before(*o.Since)
}

// limitedWriter stops writing after n bytes and reports errLimit.
type limitedWriter struct {
	w io.Writer
	n int64
}

var errLimit = errors.New("limit reached")

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLimit
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && l.n <= 0 {
		err = errLimit
	}
	return n, err
}

// writeRecord writes one record as kubectl expects it: the line, a newline
// unless the record is partial, and the timestamp first when asked.
func writeRecord(w io.Writer, r Record, timestamps bool) error {
	if timestamps {
		if _, err := io.WriteString(w, r.Time.UTC().Format(time.RFC3339Nano)+" "); err != nil {
			return err
		}
	}
	if _, err := w.Write(r.Line); err != nil {
		return err
	}
	if !r.Partial {
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	return nil
}

// WriteRecords writes records (already in memory) to w with opts applied,
// except Follow. Simulated containers' logs go through here.
func WriteRecords(w io.Writer, records []Record, opts Options) error {
	var kept []Record
	for _, r := range records {
		if opts.wants(r) {
			kept = append(kept, r)
		}
	}
	kept = tail(kept, opts.TailLines)
	if opts.LimitBytes != nil {
		w = &limitedWriter{w: w, n: *opts.LimitBytes}
	}
	for _, r := range kept {
		if err := writeRecord(w, r, opts.Timestamps); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
	}
	return nil
}

// tail keeps the records of the last n lines (a line may span several partial records).
func tail(records []Record, n *int64) []Record {
	if n == nil || *n < 0 {
		return records
	}
	lines := int64(0)
	for i := len(records) - 1; i >= 0; i-- {
		if !records[i].Partial {
			lines++
			if lines > *n {
				return records[i+1:]
			}
		}
	}
	return records
}

// Serve writes the log file at path to w with opts. With opts.Follow it keeps
// waiting for new records, polling every interval, until ctx is done or
// finished reports that the container has ended and the file is drained.
func Serve(ctx context.Context, w io.Writer, path string, opts Options, finished func() bool, interval time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if opts.LimitBytes != nil {
		w = &limitedWriter{w: w, n: *opts.LimitBytes}
	}
	flush := func() {
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
	}
	br := bufio.NewReaderSize(f, 64*1024)
	// The first pass honours tailLines: read what is there, keep the tail.
	var first []Record
	var pending []byte
	readAvailable := func(emit func(Record) error) error {
		for {
			chunk, err := br.ReadSlice('\n')
			if len(chunk) > 0 {
				pending = append(pending, chunk...)
			}
			if err == nil {
				line := pending[:len(pending)-1]
				rec, perr := ParseRecord(line)
				pending = pending[:0]
				if perr == nil && opts.wants(rec) {
					rec.Line = append([]byte(nil), rec.Line...)
					if e := emit(rec); e != nil {
						return e
					}
				}
				continue
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	if err := readAvailable(func(r Record) error { first = append(first, r); return nil }); err != nil {
		return err
	}
	for _, r := range tail(first, opts.TailLines) {
		if err := writeRecord(w, r, opts.Timestamps); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
	}
	flush()
	if !opts.Follow {
		return nil
	}
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done := finished != nil && finished()
		if err := readAvailable(func(r Record) error { return writeRecord(w, r, opts.Timestamps) }); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
		flush()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FormatTime renders t as the log timestamps are rendered.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParseInt64 parses an optional integer query parameter.
func ParseInt64(s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
