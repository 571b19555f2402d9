//go:build tools

// Package helm pins the helm command the chart's test renders deploy/chart
// with (make bin/helm). A module of its own, so that helm's dependencies do
// not move golangci-lint's (tools/go.mod).
package helm

import _ "helm.sh/helm/v4/cmd/helm"
