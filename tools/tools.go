//go:build tools

// Package tools pins the versions of the developer tools quartet's Makefile
// runs, in a module of its own so they cannot move the project's dependencies.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
