// Package plugins holds quartet's CNI plugins: bridge, host-local, loopback
// and portmap, written on the reference plugins' library packages
// (github.com/containernetworking/plugins pkg/ip, pkg/ns, pkg/ipam and
// host-local's allocator and disk store) and speaking the reference plugins'
// configuration format for the options they support.
//
// The quartet binary is a multi-call: run under one of these names (a
// symlink in the data dir's CNI bin directory), it is that plugin, driven by
// the CNI environment as any CNI runtime drives a plugin. quartet's own node
// agents call the same code inside the quartet process (see Exec), because
// starting the quartet binary, which links the whole Kubernetes control
// plane, costs more than a pod's whole sandbox may take.
package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Plugin is one CNI plugin as functions.
type Plugin struct {
	Name string
	// Add returns the result in the plugin's own version (current); callers
	// convert it to the configuration's cniVersion.
	Add   func(ctx context.Context, args *skel.CmdArgs) (types.Result, error)
	Del   func(ctx context.Context, args *skel.CmdArgs) error
	Check func(ctx context.Context, args *skel.CmdArgs) error
	About string
}

// supportedVersions are the CNI spec versions every plugin here speaks.
var supportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

var registry = map[string]*Plugin{}

func register(p *Plugin) { registry[p.Name] = p }

// Lookup returns the plugin called name, or nil.
func Lookup(name string) *Plugin { return registry[name] }

// Names lists the built-in plugins.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VersionInfo is what every built-in plugin answers to VERSION.
func VersionInfo() version.PluginInfo { return supportedVersions }

// Main runs the plugin called name as a CNI plugin process: the CNI
// environment and stdin in, the result or error on stdout. It does not
// return.
func Main(name string) {
	p := Lookup(name)
	if p == nil {
		fmt.Fprintf(os.Stderr, "quartet: no built-in CNI plugin %q\n", name)
		os.Exit(1)
	}
	ctx := context.Background()
	funcs := skel.CNIFuncs{
		Add: func(args *skel.CmdArgs) error {
			res, err := p.Add(ctx, args)
			if err != nil {
				return err
			}
			return printResult(res, args.StdinData)
		},
		Del:   func(args *skel.CmdArgs) error { return p.Del(ctx, args) },
		Check: func(args *skel.CmdArgs) error { return p.Check(ctx, args) },
	}
	if err := skel.PluginMainFuncsWithError(funcs, supportedVersions, p.About); err != nil {
		if encErr := err.Print(); encErr != nil {
			fmt.Fprintln(os.Stderr, encErr)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

func printResult(res types.Result, conf []byte) error {
	out, err := EncodeResult(res, conf)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// EncodeResult renders res in the cniVersion of the configuration conf, as
// a plugin prints it.
func EncodeResult(res types.Result, conf []byte) ([]byte, error) {
	var nc types.NetConf
	if err := json.Unmarshal(conf, &nc); err != nil {
		return nil, fmt.Errorf("decoding network configuration: %w", err)
	}
	want := nc.CNIVersion
	if want == "" {
		want = "0.1.0"
	}
	conv, err := res.GetAsVersion(want)
	if err != nil {
		return nil, err
	}
	return json.Marshal(conv)
}

// asCurrent converts any result to the current version.
func asCurrent(res types.Result) (*current.Result, error) {
	return current.NewResultFromResult(res)
}
