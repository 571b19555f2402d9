package controlplane

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// listenAPI binds the API port up front, so "port in use" is a clear error
// before any component starts.
func listenAPI(port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("--api-port %d: address 127.0.0.1:%d is already in use", port, port)
		}
		return nil, fmt.Errorf("--api-port %d: %w", port, err)
	}
	return l, nil
}
