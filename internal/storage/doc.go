// Package storage is quartet's local-path volume provisioner: it owns the
// StorageClasses local-path and local-path-retain and, for every claim of
// theirs, a directory under the data dir published as a local PersistentVolume
// pinned to the node the scheduler chose.
//
// Binding is upstream's: the PV controller in the controller manager binds the
// volume this package creates, and sig-storage-lib-external-provisioner runs
// the claim and volume loops. This package decides what a volume looks like
// (volume.go, pure), touches the disk (dirs.go) and wires both into the library
// (provisioner.go, storage.go).
package storage
