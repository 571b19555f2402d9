//go:build !linux

package kubeproxy

import (
	"context"
	"errors"
)

// Available says why Services cannot be routed here.
func Available() error { return errors.New("kube-proxy's nftables mode needs Linux") }

// Start fails off Linux.
func Start(context.Context, Config) (*Proxy, error) { return nil, Available() }
