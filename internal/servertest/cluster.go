package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterNodeTimeout is the cluster-node-timeout of the package's
// clusters, in milliseconds: a master that does not answer for this long
// is failed over to its replica, which takes about a second more. Low
// enough for failover tests to take seconds, high enough that a loaded
// machine does not fail over by itself.
const clusterNodeTimeout = 2000

// healthTimeout bounds the wait for a new cluster or sentinel set.
const healthTimeout = 30 * time.Second

// A RedisCluster is a Redis Cluster of three masters, each with one
// replica, on loopback: six redis-servers started with
// --cluster-enabled yes and joined with redis-cli --cluster create.
// Its node timeout is 2 s: a killed master is replaced by its replica
// within about 3 s.
type RedisCluster struct {
	// Nodes are the six nodes in the order they were started.
	// redis-cli made the first three masters, but a failover swaps roles:
	// MasterOf tells who serves a key now.
	Nodes []*Server
}

// Addrs returns the addresses of the nodes, "127.0.0.1:port".
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// StartRedisCluster starts a Redis Cluster of the test's own, three
// masters and three replicas, for tests that kill or pause its nodes, and
// waits until it is healthy (see WaitHealthy). extra arguments are added
// to every node's ("--cluster-require-full-coverage", "no"). It is
// stopped when the test ends. Without redis-server or redis-cli the test
// is skipped (failed with CI=true).
func StartRedisCluster(tb testing.TB, extra ...string) *RedisCluster {
	tb.Helper()
	c, err := startRedisCluster(tb.Context(), tb.TempDir(), extra...)
	need(tb, err, "")
	tb.Cleanup(func() { killAll(c.Nodes) })
	return c
}

// startRedisCluster starts the nodes in subdirectories of dir at once,
// joins them and waits until the cluster is healthy.
func startRedisCluster(ctx context.Context, dir string, extra ...string) (*RedisCluster, error) {
	cli, err := lookPath("redis-cli")
	if err != nil {
		return nil, err
	}
	c := &RedisCluster{Nodes: make([]*Server, 6)}
	for i := range c.Nodes {
		args := append([]string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout),
		}, extra...)
		if c.Nodes[i], err = newRedis(subdir(dir, "node", i), args...); err != nil {
			return nil, err
		}
		c.Nodes[i].name = "redis cluster node"
		c.Nodes[i].pick = freeClusterPort
	}
	if err := startServers(ctx, c.Nodes); err != nil {
		return nil, err
	}
	if err := c.create(ctx, cli); err != nil {
		killAll(c.Nodes)
		return nil, err
	}
	return c, nil
}

// create joins the nodes with redis-cli --cluster create and waits until
// the cluster is healthy.
func (c *RedisCluster) create(ctx context.Context, cli string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("servertest: redis-cli --cluster create: %v\n%s", err, out)
	}
	return c.WaitHealthy(ctx)
}

// WaitHealthy waits until every running node (not killed, not paused)
// reports cluster_state:ok in CLUSTER INFO, all of them agree on the
// cluster's layout (CLUSTER NODES: each node's role, master, slots and
// whether it failed), and every running replica is in sync with its
// master (master_link_status:up, no sync in progress), or until ctx ends.
// After a master was killed, it returns once its replica has taken over
// its slots; after a killed node was restarted, once it has rejoined (as a
// replica) and synced.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	return waitHealthy(ctx, "redis cluster", c.health)
}

func (c *RedisCluster) health(ctx context.Context) error {
	layout, first := "", ""
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		info, err := redisText(ctx, n.Addr(), "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %v", n.Addr(), err)
		}
		if state := infoField(info, "cluster_state"); state != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr(), state)
		}
		nodes, err := redisText(ctx, n.Addr(), "CLUSTER", "NODES")
		if err != nil {
			return fmt.Errorf("%s: %v", n.Addr(), err)
		}
		if l := clusterLayout(nodes); first == "" {
			layout, first = l, n.Addr()
		} else if l != layout {
			return fmt.Errorf("%s and %s do not agree on the cluster's layout yet", first, n.Addr())
		}
		if err := replicaSynced(ctx, n.Addr()); err != nil {
			return err
		}
	}
	return nil
}

// clusterLayout reduces a CLUSTER NODES reply to what every node must
// agree on: per node, its id, role, master, whether it failed, and slots.
func clusterLayout(nodes string) string {
	var lines []string
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		role := "slave"
		if hasFlag(f[2], "master") {
			role = "master"
		}
		if hasFlag(f[2], "fail") {
			role += ",fail"
		}
		lines = append(lines, strings.Join(append([]string{f[0], role, f[3]}, f[8:]...), " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// replicaSynced returns nil if the redis-server at addr is a master or a
// replica in sync with its master.
func replicaSynced(ctx context.Context, addr string) error {
	info, err := redisText(ctx, addr, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("%s: %v", addr, err)
	}
	if infoField(info, "role") != "slave" {
		return nil
	}
	if link := infoField(info, "master_link_status"); link != "up" {
		return fmt.Errorf("%s: replica's master_link_status:%s", addr, link)
	}
	if infoField(info, "master_sync_in_progress") != "0" {
		return fmt.Errorf("%s: replica still syncing", addr)
	}
	return nil
}

// waitHealthy polls check until it returns nil or ctx ends.
func waitHealthy(ctx context.Context, what string, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servertest: %s not healthy: %v (%w)", what, err, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// MasterOf returns the node that serves key now and its replicas, as the
// first running node that answers sees it (CLUSTER KEYSLOT and CLUSTER
// NODES; nodes flagged fail are left out). Right after a failure the
// nodes may not agree yet: WaitHealthy first.
func (c *RedisCluster) MasterOf(ctx context.Context, key string) (master *Server, replicas []*Server, err error) {
	err = errors.New("no running node")
	for _, n := range c.Nodes {
		if !n.running() {
			continue
		}
		if master, replicas, err = c.masterOf(ctx, n.Addr(), key); err == nil {
			return master, replicas, nil
		}
	}
	return nil, nil, fmt.Errorf("servertest: the master of %q: %w", key, err)
}

func (c *RedisCluster) masterOf(ctx context.Context, addr, key string) (*Server, []*Server, error) {
	v, err := redisDo(ctx, addr, "CLUSTER", "KEYSLOT", key)
	if err != nil {
		return nil, nil, err
	}
	slot, _ := v.(int64)
	nodes, err := redisText(ctx, addr, "CLUSTER", "NODES")
	if err != nil {
		return nil, nil, err
	}
	// Each line: id host:port@bus[,hostname] flags master-id ping pong epoch link slot...
	type node struct{ id, port, flags, master string }
	var all []node
	masterID := ""
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		hostport, _, _ := strings.Cut(f[1], "@")
		_, port, _ := net.SplitHostPort(hostport)
		n := node{id: f[0], port: port, flags: f[2], master: f[3]}
		all = append(all, n)
		if hasFlag(n.flags, "master") && !hasFlag(n.flags, "fail") && servesSlot(f[8:], slot) {
			masterID = n.id
		}
	}
	var master *Server
	var replicas []*Server
	for _, n := range all {
		switch {
		case n.id == masterID:
			master = c.byPort(n.port)
		case n.master == masterID && masterID != "" && !hasFlag(n.flags, "fail"):
			if r := c.byPort(n.port); r != nil {
				replicas = append(replicas, r)
			}
		}
	}
	if master == nil {
		return nil, nil, fmt.Errorf("%s sees no master for slot %d", addr, slot)
	}
	return master, replicas, nil
}

func hasFlag(flags, flag string) bool {
	for f := range strings.SplitSeq(flags, ",") {
		if f == flag {
			return true
		}
	}
	return false
}

// servesSlot reports whether the slot fields of a CLUSTER NODES line
// ("0-5460", "5461", "[93->-id]" while migrating) hold slot.
func servesSlot(fields []string, slot int64) bool {
	for _, f := range fields {
		if strings.HasPrefix(f, "[") {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		if err1 == nil && err2 == nil && a <= slot && slot <= b {
			return true
		}
	}
	return false
}

func (c *RedisCluster) byPort(port string) *Server {
	for _, n := range c.Nodes {
		if strconv.Itoa(n.Port()) == port {
			return n
		}
	}
	return nil
}
