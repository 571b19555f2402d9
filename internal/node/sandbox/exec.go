package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"quartet.dev/quartet/internal/node/sandbox/plugins"
)

// inProcessExec is libcni's plugin runner: a built-in plugin found in the
// network's bin directory runs as a function call in this process (the same
// code the multi-call binary runs); any other plugin is a program, run as
// libcni runs it.
type inProcessExec struct {
	binDir string
	other  invoke.Exec
}

var _ invoke.Exec = (*inProcessExec)(nil)

func newInProcessExec(binDir string) *inProcessExec {
	return &inProcessExec{binDir: binDir, other: &invoke.DefaultExec{RawExec: &invoke.RawExec{}, PluginDecoder: version.PluginDecoder{}}}
}

func (e *inProcessExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *inProcessExec) Decode(data []byte) (version.PluginInfo, error) {
	return e.other.Decode(data)
}

func (e *inProcessExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	p := plugins.Lookup(filepath.Base(pluginPath))
	if p == nil || filepath.Dir(pluginPath) != e.binDir {
		return e.other.ExecPlugin(ctx, pluginPath, stdin, environ)
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CNI_") {
			env[k] = v
		}
	}
	args := &skel.CmdArgs{
		ContainerID: env["CNI_CONTAINERID"],
		Netns:       env["CNI_NETNS"],
		IfName:      env["CNI_IFNAME"],
		Args:        env["CNI_ARGS"],
		Path:        env["CNI_PATH"],
		StdinData:   stdin,
	}
	switch cmd := env["CNI_COMMAND"]; cmd {
	case "ADD":
		res, err := p.Add(ctx, args)
		if err != nil {
			return nil, err
		}
		return plugins.EncodeResult(res, stdin)
	case "DEL":
		return nil, p.Del(ctx, args)
	case "CHECK":
		return nil, p.Check(ctx, args)
	case "VERSION":
		var b bytes.Buffer
		if err := plugins.VersionInfo().Encode(&b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case "GC", "STATUS":
		return nil, nil
	default:
		return nil, fmt.Errorf("plugin %s: unknown CNI_COMMAND %q", p.Name, cmd)
	}
}
