// Package datadir owns the layout of a quartet data directory: every path in
// it is named here, so the CLI, the control plane, the node agents, the tests
// and the benchmarks agree on where things are. It also guards the directory:
// Prepare refuses a data dir that another user could have written to, and Lock
// keeps a second `quartet up` out of it.
package datadir

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir is the root of a data dir, an absolute path.
type Dir string

// New returns the data dir at path, made absolute.
func New(path string) (Dir, error) {
	if path == "" {
		return "", fmt.Errorf("the data dir must not be empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("data dir %q: %w", path, err)
	}
	return Dir(abs), nil
}

// Path is the root.
func (d Dir) Path() string { return string(d) }

func (d Dir) join(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// Kubeconfig is the admin kubeconfig (mode 0600, CA pinned).
func (d Dir) Kubeconfig() string { return d.join("kubeconfig") }

// PKI holds the CA, every certificate it issued and the service-account key.
func (d Dir) PKI() string { return d.join("pki") }

// Etcd is the embedded etcd member's directory.
func (d Dir) Etcd() string { return d.join("etcd") }

// EtcdSocket is the embedded etcd's only listener: a unix socket, reachable
// only by the user that may enter the data dir.
func (d Dir) EtcdSocket() string { return d.join("etcd.sock") }

// Logs holds the log files.
func (d Dir) Logs() string { return d.join("logs") }

// LogFile is every in-process component's log (klog), rotated by size.
func (d Dir) LogFile() string { return d.join("logs", "quartet.log") }

// StderrLog receives what libraries write to the process's stderr.
func (d Dir) StderrLog() string { return d.join("logs", "stderr.log") }

// EtcdLog is the embedded etcd's own log.
func (d Dir) EtcdLog() string { return d.join("logs", "etcd.log") }

// ControlSocket is the control channel of a running `quartet up` (`quartet
// node add|remove|list`).
func (d Dir) ControlSocket() string { return d.join("quartet.sock") }

// LockFile is held while `quartet up` runs.
func (d Dir) LockFile() string { return d.join("lock") }

// Storage holds a directory per local-path volume.
func (d Dir) Storage() string { return d.join("storage") }

// Nodes holds a directory per node agent.
func (d Dir) Nodes() string { return d.join("nodes") }

// Node is one node agent's directory (its pods' logs, volumes and state).
func (d Dir) Node(name string) string { return d.join("nodes", name) }

// AddedNodes lists the nodes added with `quartet node add`, so a restart
// brings them back.
func (d Dir) AddedNodes() string { return d.join("nodes", "added.json") }

// Images is the user's image map for the process runtime.
func (d Dir) Images() string { return d.join("images.yaml") }

// Run holds run-time state that does not outlive the process in meaning
// (network namespaces bind mounts and the like), one subdirectory per kind.
func (d Dir) Run() string { return d.join("run") }

// NetNS is the bind-mounted network namespace of a pod sandbox.
func (d Dir) NetNS(podUID string) string { return d.join("run", "netns", podUID) }

// NetNSDir holds the pods' network namespace files (a shared mount of its
// own while the pod network runs).
func (d Dir) NetNSDir() string { return d.join("run", "netns") }

// Network is the pod network's state: the recorded cluster range and the
// CNI configuration, plugin links, result cache and address reservations.
func (d Dir) Network() string { return d.join("network") }

// Registries is the registries file (mirrors and credentials for image
// pulls, in the shape of k3s's registries.yaml).
func (d Dir) Registries() string { return d.join("registries.yaml") }

// ImageStore is the content-addressed image store shared by the nodes
// (package images); not to be confused with Images, the image map file.
func (d Dir) ImageStore() string { return d.join("images") }

// Containers is libcontainer's state directory for the containers of the
// process (and image) runtimes: a crashed run's containers are found there
// and destroyed at the next start. It lies outside the data dir, in
// /run/quartet-<ID>/containers (root only; /run is emptied at boot, as the
// containers are): libcontainer mounts the quartet binary's directory
// through overlayfs for every container start and exec, with the
// container's state dir as second lower dir, and the kernel refuses
// overlapping lower dirs. A data dir inside the binary's directory (`./quartet
// up` from the home directory holding ~/.quartet) then made libcontainer copy
// the whole binary into memory each time instead. Without a /run directory
// it is <data-dir>/run/containers.
func (d Dir) Containers() string {
	if fi, err := os.Stat("/run"); err == nil && fi.IsDir() {
		return filepath.Join("/run", "quartet-"+d.ID(), "containers")
	}
	return d.join("run", "containers")
}

// ID is a short name of the data dir for what a cluster creates outside it
// (the first 12 hex digits of the SHA-256 of its path), so that two data
// dirs never share one.
func (d Dir) ID() string {
	sum := sha256.Sum256([]byte(d))
	return hex.EncodeToString(sum[:])[:12]
}

// Default is the data dir when --data-dir is not given: $QUARTET_DATA_DIR,
// or ~/.quartet.
func Default() string {
	if d := os.Getenv("QUARTET_DATA_DIR"); d != "" {
		return d
	}
	return home()
}

// Running is the data dir of the quartet a command talks to:
// $QUARTET_DATA_DIR; else the directory of $KUBECONFIG when it is a quartet
// data dir with a running quartet (its control socket); else ~/.quartet.
func Running() string {
	if d := os.Getenv("QUARTET_DATA_DIR"); d != "" {
		return d
	}
	if kc := os.Getenv("KUBECONFIG"); kc != "" && !strings.Contains(kc, string(os.PathListSeparator)) && filepath.Base(kc) == "kubeconfig" {
		dir := Dir(filepath.Dir(kc))
		if _, err := os.Stat(dir.ControlSocket()); err == nil {
			return string(dir)
		}
	}
	return home()
}

func home() string {
	h, err := os.UserHomeDir()
	if err != nil {
		return ".quartet"
	}
	return filepath.Join(h, ".quartet")
}
