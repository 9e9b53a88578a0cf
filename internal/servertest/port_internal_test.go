package servertest

import "testing"

// TestFreeClusterPort checks that a cluster node's port leaves its bus
// port (+10000) free and below the ephemeral range.
func TestFreeClusterPort(t *testing.T) {
	for range 20 {
		p, err := freeClusterPort()
		if err != nil {
			t.Fatal(err)
		}
		if p < clusterPortLow || p > 22767 {
			t.Fatalf("freeClusterPort() = %d; want a port in [%d, 22767]", p, clusterPortLow)
		}
		if !canBind(p + 10000) {
			t.Errorf("freeClusterPort() = %d, whose bus port %d is taken", p, p+10000)
		}
	}
}
