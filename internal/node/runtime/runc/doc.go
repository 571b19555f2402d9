// Package runc runs container instances with runc's libcontainer: each in
// its own mount, PID, IPC and UTS namespaces (the network namespace is the
// pod's when the spec names one, else the host's), its own cgroup under one
// parent per data dir (so every process can be found and killed after any
// crash), the container default capability set unless privileged, and a
// root filesystem that is either a directory (an image's) or the host's own
// filesystem, read-only.
//
// quartet re-executes itself as the container's init, as runc does (see
// init_linux.go). It is shared by the process runtime (the host's root) and
// is where the runtime for OCI images starts its containers.
package runc
