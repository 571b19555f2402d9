// Package explain reads the intent of a manifest directory, or of a
// cluster's objects, one line per object: the chapter's decision tree
// (interchangeable? one per node? runs to completion? periodically?) and the
// concrete identity each object will have, followed by findings with stable
// ids for the traps behind the usual accidents, each with its reason and its
// fix. It backs `quartet explain`.
//
// The rules live in one table (rules.go), each citing the chapter section or
// upstream issue behind it; docs/explain.md has an entry per rule. Reading
// files is offline; live.go reads the same objects from a cluster and adds,
// for objects that are stuck, one line on why.
package explain
