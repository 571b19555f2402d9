//go:build !linux || !cgo || !seccomp

package runc

// SeccompAvailable reports whether containers can be given a seccomp
// profile: quartet was built with libseccomp (the seccomp build tag, which
// `make build` sets when libseccomp-dev is installed).
func SeccompAvailable() (bool, string) {
	return false, "this quartet was built without libseccomp (`make build` with libseccomp-dev and pkg-config installed builds it in)"
}
