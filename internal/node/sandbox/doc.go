// Package sandbox gives a pod its network: a network namespace of its own,
// bind-mounted under the data dir (the file runtimes join), set up through
// CNI (libcni and a conflist in the data dir; the built-in bridge,
// host-local, loopback and portmap plugins by default), on a bridge, a
// cluster range, a host address and an nftables table that are named and
// chosen per data dir. It also removes everything a crashed run left.
package sandbox
