package stores

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Start-up checks of a redis store that name the misconfiguration behind
// an error, or catch one that PING alone does not: the check of
// [OpenAndPing] runs them through Ping.

// explainPing rewords the error of a PING that says more than go-redis
// tells: refused credentials (an error wrapping ErrAuth); sentinels that answer but do not know the master's name (go-redis
// says "all sentinels specified in configuration are unreachable: redis:
// nil").
func (r *Redis) explainPing(err error) error {
	if isRedisAuthError(err) {
		// The server's own words name the user, never the password.
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if r.sentinel != nil && errors.Is(err, redis.Nil) {
		return fmt.Errorf("the sentinels that answered know no master named %q (SENTINEL GET-MASTER-ADDR-BY-NAME returned nothing): check the master name, the URL's path /MASTER_NAME (%v)",
			r.sentinel.MasterName, err)
	}
	return err
}

// isRedisAuthError reports whether err is a server's refusal of the
// credentials: WRONGPASS (a wrong user or password, Redis 6 and later),
// NOAUTH (a password required and none given) or an AUTH of a server
// without a password (Redis before 6).
func isRedisAuthError(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
		strings.Contains(msg, "AUTH <password> called without any password configured")
}

// checkNotClusterNode refuses a single-server store whose server is a
// node of a Redis Cluster ("cluster_enabled:1" in INFO cluster): it would
// answer for the keys of its own slots and refuse the others with MOVED.
// A server that does not answer INFO (an ACL that forbids it) passes.
func (r *Redis) checkNotClusterNode(ctx context.Context) error {
	c, ok := r.cli().(*redis.Client)
	if !ok || r.sentinel != nil {
		return nil
	}
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil || !strings.Contains(info, "cluster_enabled:1") {
		return nil
	}
	addr := c.Options().Addr
	return fmt.Errorf("stores: redis: %s is a node of a Redis Cluster, which serves only the keys of its own slots; open the cluster with redis+cluster://%s/ (more seeds comma-separated)", addr, addr)
}
