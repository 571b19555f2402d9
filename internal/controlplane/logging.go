package controlplane

import (
	"flag"

	"gopkg.in/natefinch/lumberjack.v2"
	"k8s.io/client-go/rest"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
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
func setupLogging(path string) error {
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "one_output": "true"} {
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
	// New files are mode 0600; the backups are named quartet-<time>.log.
	klog.SetOutput(&lumberjack.Logger{Filename: path, MaxSize: logMaxSizeMB, MaxBackups: logBackups})
	// In-process clients would print API deprecation warnings on the
	// terminal; upstream's components silence them the same way.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	return nil
}
