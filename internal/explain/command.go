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

// flags are `quartet explain`'s options.
type flags struct {
	output, namespace, kubeconfig string
	strict, live, all, listRules  bool
}

// Command returns `quartet explain`.
func Command(d Deps) *cobra.Command {
	var fl flags
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
		RunE: func(cmd *cobra.Command, args []string) error { return d.run(cmd, args, fl) },
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	f := c.Flags()
	f.StringVarP(&fl.output, "output", "o", "text", "text or json")
	f.BoolVar(&fl.strict, "strict", false, "exit 1 on warnings and stuck objects too, not only on errors")
	f.BoolVar(&fl.live, "live", false, "read the objects of a cluster instead of manifests")
	f.StringVarP(&fl.namespace, "namespace", "n", "", "with --live: the namespace (default: the kubeconfig context's)")
	f.BoolVarP(&fl.all, "all-namespaces", "A", false, "with --live: every namespace")
	f.StringVar(&fl.kubeconfig, "kubeconfig", "", "with --live: the kubeconfig (default: $KUBECONFIG, then quartet's, then ~/.kube/config)")
	f.BoolVar(&fl.listRules, "rules", false, "list the rules and exit")
	return c
}

// run is the command: it reads, prints the report and returns its exit
// status.
func (d Deps) run(cmd *cobra.Command, args []string, fl flags) error {
	out := cmd.OutOrStdout()
	if fl.output != "text" && fl.output != "json" {
		return usage(fmt.Errorf("-o %q: want text or json", fl.output))
	}
	if fl.listRules {
		return printRules(out)
	}
	r, err := d.report(cmd, args, fl)
	if err != nil {
		return err
	}
	if fl.output == "json" {
		err = r.JSON(out)
	} else {
		err = r.Text(out)
	}
	if err != nil {
		return err
	}
	if code := r.ExitCode(fl.strict); code != ExitOK {
		return &ExitError{Code: code}
	}
	return nil
}

// report reads the manifests args name, or with --live the cluster's
// objects, and explains them.
func (d Deps) report(cmd *cobra.Command, args []string, fl flags) (Report, error) {
	opts := Options{Now: d.Now(), Local: d.Local()}
	switch {
	case fl.live && len(args) > 0:
		return Report{}, usage(errors.New("give PATHs or --live, not both"))
	case fl.live:
		return d.liveReport(cmd, fl, opts)
	case len(args) == 0:
		return Report{}, usage(errors.New("give manifests to read (a file, a directory, or - for standard input), or --live"))
	}
	objs, errs := manifest.Load(args, cmd.InOrStdin())
	r := Manifests(objs, errs, opts)
	if len(objs) == 0 && len(errs) == 0 {
		r.Problems = append(r.Problems, Problem{Where: strings.Join(args, " "), Error: "no objects found"})
		r.Counts.Problems++
	}
	return r, nil
}

// liveReport is --live: the namespace -n names (every one with -A, the
// kubeconfig context's by default).
func (d Deps) liveReport(cmd *cobra.Command, fl flags, opts Options) (Report, error) {
	client, contextNS, err := d.Client(fl.kubeconfig)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "quartet explain: no cluster (start one with `quartet up`, or give manifests): %v\n", err)
		return Report{}, &ExitError{Code: ExitUnreadable}
	}
	ns := fl.namespace
	switch {
	case fl.all:
		ns = ""
	case ns == "":
		ns = contextNS
	}
	r, err := Live(cmd.Context(), client, ns, opts)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "quartet explain: %v\n", err)
		return Report{}, &ExitError{Code: ExitUnreadable}
	}
	return r, nil
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
