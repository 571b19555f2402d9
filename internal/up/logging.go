package up

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/client-go/rest"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"quartet.dev/quartet/internal/datadir"
)

// The log file is rotated by size: a busy cluster writes about a megabyte a
// minute, so the current file and its backups hold hours of history in at
// most logMaxSizeMB × (logBackups+1) megabytes.
const (
	logMaxSizeMB = 32
	logBackups   = 3
)

// setupLogging sends every component's log to one file in the data dir, so
// the terminal shows quartet's own progress lines only. The upstream
// components each try to apply logging options again; with
// ReapplyHandlingIgnoreUnchanged the second attempt is a no-op instead of an
// error.
func setupLogging(dir datadir.Dir) error {
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "one_output": "true"} {
		_ = fs.Set(k, v) // the flags exist: klog.InitFlags defined them just above
	}
	// New files are mode 0600; the backups are named quartet-<time>.log.
	klog.SetOutput(&lumberjack.Logger{Filename: dir.LogFile(), MaxSize: logMaxSizeMB, MaxBackups: logBackups})
	// In-process clients would print API deprecation warnings on the
	// terminal; upstream's components silence them the same way.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	return captureStderr(dir.StderrLog())
}

// captureStderr points file descriptor 2 at path, where loggers that
// libraries set up at init to write to the process's stderr (the
// apiserver's etcd client, for one) end up, and keeps os.Stderr, through
// which quartet prints its own errors, on the terminal. A crash prints its
// trace to both.
func captureStderr(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer f.Close()
	terminal, err := syscall.Dup(2)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	syscall.CloseOnExec(terminal)
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		syscall.Close(terminal)
		return fmt.Errorf("log file: %w", err)
	}
	os.Stderr = os.NewFile(uintptr(terminal), "/dev/stderr")
	return debug.SetCrashOutput(os.Stderr, debug.CrashOptions{})
}
