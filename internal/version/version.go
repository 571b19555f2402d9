// Package version holds quartet's own version and the Kubernetes release it
// embeds.
//
// The Kubernetes version variables live unexported in
// k8s.io/component-base/version and, as in Kubernetes' own build, are stamped
// at link time: `make build` passes LDFLAGS (see the Makefile), so
// `kubectl version` and the apiserver's /version report v1.37.2. A plain
// `go build` leaves them unset; Check reports that.
package version

import (
	"fmt"

	k8sversion "k8s.io/component-base/version"
)

// Kubernetes is the upstream release quartet embeds.
const Kubernetes = "v1.37.2"

// Quartet is quartet's own version, stamped by the Makefile.
var Quartet = "v0.1.0-dev"

// Check returns an error when the binary was built without the version
// stamp, which makes kubectl print "could not parse pre-release/metadata".
func Check() error {
	if got := k8sversion.Get().GitVersion; got != Kubernetes {
		return fmt.Errorf("this binary reports Kubernetes version %q instead of %s: build it with `make build` (it passes the -ldflags that stamp the version)", got, Kubernetes)
	}
	return nil
}

// String describes quartet's version and the Kubernetes version it embeds.
func String() string {
	return fmt.Sprintf("quartet %s (Kubernetes %s)", Quartet, k8sversion.Get().GitVersion)
}
