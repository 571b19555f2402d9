package cronnext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/internal/cronsim"
	"quartet.dev/quartet/internal/manifest"
)

// fetchFunc reads a CronJob from a cluster.
type fetchFunc func(ctx context.Context, kubeconfig, namespace, name string) (*batchv1.CronJob, error)

type options struct {
	now   func() time.Time
	local func() *time.Location
	fetch fetchFunc
}

// Command returns the `cron` command with its `next` subcommand, for the
// quartet root command to mount: `quartet cron next NAME|-f FILE [--count N]`.
func Command() *cobra.Command {
	cron := &cobra.Command{
		Use:   "cron",
		Short: "Work with CronJob schedules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cron.AddCommand(newNextCommand(options{now: time.Now, local: MachineZone, fetch: fetchFromCluster}),
		cronsim.Command(cronsim.Deps{Now: time.Now, Local: MachineZone}))
	return cron
}

func newNextCommand(o options) *cobra.Command {
	var (
		file, namespace, kubeconfig, from string
		count                             int
	)
	c := &cobra.Command{
		Use:   "next NAME | -f FILE [--count N]",
		Short: "Print when a CronJob will next run, in its time zone and this machine's, with warnings",
		Long: `Print the next run times of a CronJob: in the time zone its schedule is read in
and in this machine's, with the name of the Job each run creates, and warnings
about settings that cause the usual CronJob accidents (no startingDeadlineSeconds,
concurrencyPolicy Allow on Jobs that can outlast the period, no timeZone,
daylight-saving changes that skip or repeat runs).

NAME reads the CronJob from the cluster (the kubeconfig is --kubeconfig,
$KUBECONFIG, or the one quartet up wrote in ~/.quartet). -f reads a manifest
instead, with no cluster needed; NAME then picks among several CronJobs in it.`,
		Example: `  quartet cron next db-backup
  quartet cron next -f db-backup-cronjob.yaml --count 10
  quartet cron next -f - < cronjobs.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			start := o.now()
			if from != "" {
				t, err := time.Parse(time.RFC3339, from)
				if err != nil {
					return fmt.Errorf("--from %q: want an RFC 3339 time such as 2026-05-19T10:00:00Z", from)
				}
				start = t
			}
			var cj *batchv1.CronJob
			switch {
			case file != "":
				cjs, err := manifest.LoadCronJobs(file, cmd.InOrStdin())
				if err != nil {
					return err
				}
				if cj, err = manifest.PickCronJob(cjs, name, file); err != nil {
					return err
				}
			case name != "":
				var err error
				if cj, err = o.fetch(cmd.Context(), kubeconfig, namespace, name); err != nil {
					return err
				}
			default:
				return errors.New("name a CronJob to read from the cluster, or give a manifest with -f FILE")
			}
			r, err := Next(cj, start, count, o.local())
			if err != nil {
				return fmt.Errorf("CronJob %s: %w", displayName(cj), err)
			}
			return r.Render(cmd.OutOrStdout())
		},
	}
	f := c.Flags()
	f.StringVarP(&file, "filename", "f", "", `manifest holding the CronJob ("-" for standard input)`)
	f.IntVar(&count, "count", 5, fmt.Sprintf("how many runs to list (1 to %d)", MaxCount))
	f.StringVarP(&namespace, "namespace", "n", "", "namespace of NAME (default: the kubeconfig context's, or default)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig for reading NAME from the cluster")
	f.StringVar(&from, "from", "", "list runs after this RFC 3339 time instead of now")
	return c
}

func displayName(cj *batchv1.CronJob) string {
	switch {
	case cj.Name == "":
		return "(unnamed)"
	case cj.Namespace == "":
		return cj.Name
	}
	return cj.Namespace + "/" + cj.Name
}

// fetchFromCluster reads a CronJob through the kubeconfig
// manifest.ClientConfig finds.
func fetchFromCluster(ctx context.Context, kubeconfig, namespace, name string) (*batchv1.CronJob, error) {
	config := manifest.ClientConfig(kubeconfig)
	if namespace == "" {
		ns, _, err := config.Namespace()
		if err != nil {
			return nil, fmt.Errorf("reading the kubeconfig: %w", err)
		}
		namespace = ns
	}
	rest, err := config.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster to read CronJob %q from (start one with `quartet up`, or use -f FILE): %w", name, err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	cj, err := client.BatchV1().CronJobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading CronJob %s/%s: %w", namespace, name, err)
	}
	return cj, nil
}

// MachineZone returns this machine's time zone under its IANA name when that
// can be found ($TZ, the /etc/localtime link, /etc/timezone) and agrees with
// time.Local, so reports say "Europe/Berlin" rather than "Local"; otherwise
// time.Local.
func MachineZone() *time.Location {
	var candidates []string
	if tz, ok := os.LookupEnv("TZ"); ok {
		candidates = append(candidates, strings.TrimPrefix(tz, ":"))
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if i := strings.Index(target, "zoneinfo/"); i >= 0 {
			candidates = append(candidates, target[i+len("zoneinfo/"):])
		}
	}
	if data, err := os.ReadFile("/etc/timezone"); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(data)))
	}
	for _, name := range candidates {
		if name == "" {
			name = "UTC" // TZ="" means UTC
		}
		if loc, err := time.LoadLocation(name); err == nil && sameOffsets(loc, time.Local) {
			return loc
		}
	}
	return time.Local
}

// sameOffsets reports whether a and b agree over the coming year.
func sameOffsets(a, b *time.Location) bool {
	now := time.Now()
	for m := 0; m < 12; m += 3 {
		t := now.AddDate(0, m, 0)
		_, oa := t.In(a).Zone()
		_, ob := t.In(b).Zone()
		if oa != ob {
			return false
		}
	}
	return true
}
