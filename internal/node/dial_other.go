//go:build !linux

package node

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// dialInNetNS connects to localhost:port; other network namespaces exist
// only on Linux.
func dialInNetNS(ctx context.Context, netns string, port int) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("localhost", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to localhost:%d: %w", port, err)
	}
	return conn, nil
}
