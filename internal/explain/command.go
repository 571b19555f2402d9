package explain

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"quartet.dev/quartet/internal/manifest"
)

// Exit codes of `quartet explain`.
const (
	// ExitOK: everything was read; no errors (and, with --strict, no
	// warnings and nothing stuck).
	ExitOK = 0
	// ExitFindings: an error finding, or with --strict a warning or a
	// stuck object.
	ExitFindings = 1
	// ExitUnreadable: some input could not be read, or there was nothing to
	// read, or the cluster could not be reached, or the command line is
	// wrong.
	ExitUnreadable = 2
)

// ExitError carries an exit status out of the command. Err is nil when the
// command has printed its outcome already, and then the message is empty.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the status the process exits with.
func (e *ExitError) ExitCode() int { return e.Code }

// Deps are what the command needs from outside, replaced in tests.
type Deps struct {
	Now func() time.Time
	// Local is the zone CronJobs without spec.timeZone are read in.
	Local func() *time.Location
	// Client returns a client for --live, and the kubeconfig context's
	// namespace.
	Client func(kubeconfig string) (kubernetes.Interface, string, error)
}

// Command returns `quartet explain`.
func Command(d Deps) *cobra.Command {
	var (
		output, namespace, kubeconfig string
		strict, live, all, listRules  bool
	)
	c := &cobra.Command{
		Use:   "explain PATH... | - | --live [-n NAMESPACE | -A]",
		Short: "Read the intent of manifests (or a cluster's objects) in one line per object, with the chapter's traps",
		Long: `Print one line per object: its place in the chapter's decision tree (are the pods
interchangeable? one per node? does it run to completion? periodically?) and the
identity it will have (web-0..web-2, claims data-web-0..2, "daily 03:00
Asia/Seoul = 18:00 UTC"), then findings with stable ids, each with its reason
and its fix: errors (the API server refuses it, or it never runs), warnings
(the traps behind the usual accidents) and notes.

PATH is a file, a directory (its .yaml, .yml and .json files, recursively) or
"-" for standard input (helm template ... | quartet explain -). --live reads
the objects of a cluster instead (the kubeconfig as quartet kubectl finds it)
and says, for each stuck object, why.

Exit status: 0 when everything was read and no error was found, 1 when an
error was found (with --strict: also a warning, or a stuck object), 2 when
some input could not be read or the cluster could not be reached.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Example: `  quartet explain examples/
  helm template ./chart | quartet explain -
  quartet explain -o json --strict deploy/
  quartet explain --live -n shop
  quartet explain --rules`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if output != "text" && output != "json" {
				return usage(fmt.Errorf("-o %q: want text or json", output))
			}
			if listRules {
				return printRules(out)
			}
			opts := Options{Now: d.Now(), Local: d.Local()}
			var r Report
			switch {
			case live && len(args) > 0:
				return usage(errors.New("give PATHs or --live, not both"))
			case live:
				client, contextNS, err := d.Client(kubeconfig)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "quartet explain: no cluster (start one with `quartet up`, or give manifests): %v\n", err)
					return &ExitError{Code: ExitUnreadable}
				}
				ns := namespace
				switch {
				case all:
					ns = ""
				case ns == "":
					ns = contextNS
				}
				if r, err = Live(cmd.Context(), client, ns, opts); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "quartet explain: %v\n", err)
					return &ExitError{Code: ExitUnreadable}
				}
			case len(args) == 0:
				return usage(errors.New("give manifests to read (a file, a directory, or - for standard input), or --live"))
			default:
				objs, errs := manifest.Load(args, cmd.InOrStdin())
				r = Manifests(objs, errs, opts)
				if len(objs) == 0 && len(errs) == 0 {
					r.Problems = append(r.Problems, Problem{Where: strings.Join(args, " "), Error: "no objects found"})
					r.Counts.Problems++
				}
			}
			var err error
			if output == "json" {
				err = r.JSON(out)
			} else {
				err = r.Text(out)
			}
			if err != nil {
				return err
			}
			if code := r.ExitCode(strict); code != ExitOK {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	f := c.Flags()
	f.StringVarP(&output, "output", "o", "text", "text or json")
	f.BoolVar(&strict, "strict", false, "exit 1 on warnings and stuck objects too, not only on errors")
	f.BoolVar(&live, "live", false, "read the objects of a cluster instead of manifests")
	f.StringVarP(&namespace, "namespace", "n", "", "with --live: the namespace (default: the kubeconfig context's)")
	f.BoolVarP(&all, "all-namespaces", "A", false, "with --live: every namespace")
	f.StringVar(&kubeconfig, "kubeconfig", "", "with --live: the kubeconfig (default: $KUBECONFIG, then quartet's, then ~/.kube/config)")
	f.BoolVar(&listRules, "rules", false, "list the rules and exit")
	return c
}

// usage is a command-line mistake: exit status 2, like unreadable input.
func usage(err error) error { return &ExitError{Code: ExitUnreadable, Err: err} }

// ExitCode is the exit status for the report.
func (r Report) ExitCode(strict bool) int {
	switch {
	case r.Counts.Problems > 0:
		return ExitUnreadable
	case r.Counts.Errors > 0, strict && (r.Counts.Warnings > 0 || r.Counts.Stuck > 0):
		return ExitFindings
	}
	return ExitOK
}

// ClusterClient is Deps.Client for real use: the kubeconfig as quartet's
// commands find it.
func ClusterClient(kubeconfig string) (kubernetes.Interface, string, error) {
	config := manifest.ClientConfig(kubeconfig)
	ns, _, err := config.Namespace()
	if err != nil {
		return nil, "", err
	}
	rest, err := config.ClientConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := kubernetes.NewForConfig(rest)
	return client, ns, err
}

func printRules(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tKINDS\tCATCHES")
	for _, r := range rules {
		kinds := strings.Join(r.Kinds, ",")
		if kinds == "" {
			kinds = "any"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Severity, kinds, r.Summary)
	}
	return tw.Flush()
}
