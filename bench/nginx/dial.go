package nginx

import (
	"context"
	"fmt"
	"net"
	"time"
)

type netDialer struct{}

func (netDialer) dial(ctx context.Context, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: time.Second}
	return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
}
