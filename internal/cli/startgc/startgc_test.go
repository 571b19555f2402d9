package startgc

import (
	"runtime/debug"
	"testing"
)

// A test binary is neither `quartet kubectl` nor a container's init: the
// collector runs as configured, and Resume changes nothing.
func TestNotPausedElsewhere(t *testing.T) {
	if paused != -2 {
		t.Fatalf("paused = %d in a test binary", paused)
	}
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	if before < 0 {
		t.Fatalf("GC percent %d: the collector is off", before)
	}
	Resume()
	if got := debug.SetGCPercent(before); got != before {
		t.Fatalf("Resume changed the GC percent from %d to %d", before, got)
	}
}

func TestResumeRestores(t *testing.T) {
	saved := debug.SetGCPercent(-1)
	paused = saved
	Resume()
	if got := debug.SetGCPercent(saved); got != saved {
		t.Fatalf("after Resume the GC percent is %d, want %d", got, saved)
	}
	if paused != -2 {
		t.Fatalf("paused = %d after Resume", paused)
	}
}
