// Package runc runs container instances with runc's libcontainer: each in
// its own mount namespace, its own PID namespace or the one the spec names,
// the IPC and UTS namespaces the spec names (its pod's, held by the pod's
// pause container, see Pause) or its own, the network namespace the spec
// names (the pod's) or the host's, its own cgroup under one
// parent per data dir (so every process can be found and killed after any
// crash), the container default capability set unless privileged, and a
// root filesystem that is either a directory (an image's) or the host's own
// filesystem, read-only.
//
// quartet re-executes itself as the container's init, as runc does (see
// init_linux.go). It is shared by the process runtime (the host's root) and
// is where the runtime for OCI images starts its containers.
package runc
