package controlplane

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// setupLogging sends every component's log to one file in the data dir, so
// the terminal shows quartet's own progress lines only. The upstream
// components each try to apply logging options again; with
// ReapplyHandlingIgnoreUnchanged the second attempt is a no-op instead of an
// error.
func setupLogging(path string) error {
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "one_output": "true"} {
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
	klog.SetOutput(f)
	// In-process clients would print API deprecation warnings on the
	// terminal; upstream's components silence them the same way.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	return nil
}
