package servertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports are picked below the ephemeral range (Linux 32768-60999, macOS and
// Windows 49152-65535), where the kernel takes the local ports of outgoing
// connections: a port found free there stays free unless another server
// takes it. Servers get ports in [12000, 20000); Redis Cluster nodes get
// ports in [20000, 22768), so that the cluster bus port, the node's port
// + 10000, falls in [30000, 32768), apart from both.
const (
	portLow        = 12000
	clusterPortLow = 20000
	clusterPortMax = 22767
	clusterBusGap  = 10000
)

// FreePort returns a TCP port on 127.0.0.1, below the ephemeral port
// range, that nothing listened on a moment ago. Another process can take
// it before the caller binds it: callers that start a server on it retry
// with another port when the server cannot bind (the Start functions of
// this package do).
func FreePort() (int, error) {
	return freePort(portLow, clusterPortLow, 0)
}

// freeClusterPort returns a port for a Redis Cluster node: free, and with
// its cluster bus port free too.
func freeClusterPort() (int, error) {
	return freePort(clusterPortLow, clusterPortMax+1, clusterBusGap)
}

// freePort tries random ports in [low, high) until one (and port+gap,
// when gap is not zero) can be bound on 127.0.0.1.
func freePort(low, high, gap int) (int, error) {
	for range 200 {
		p := low + rand.IntN(high-low)
		if !canBind(p) || (gap != 0 && !canBind(p+gap)) {
			continue
		}
		return p, nil
	}
	return 0, fmt.Errorf("servertest: no free port in [%d, %d)", low, high)
}

func canBind(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
