//go:build linux && cgo && seccomp

package runc

// SeccompAvailable reports whether containers can be given a seccomp
// profile: quartet was built with libseccomp (the seccomp build tag, which
// `make build` sets when libseccomp-dev is installed).
func SeccompAvailable() (bool, string) { return true, "" }
