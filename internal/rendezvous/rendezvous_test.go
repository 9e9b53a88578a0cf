package rendezvous

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const numKeys = 100_000

func servers(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("127.0.0.1:%d", 11211+i)
	}
	return s
}

// keys returns keys shaped like the stores' (prefix, generation, route).
func keys() []string {
	k := make([]string, numKeys)
	for i := range k {
		k[i] = fmt.Sprintf("app:1718000000000000000:GET /items/%d?page=%d", i, i%7)
	}
	return k
}

func mustNew(t *testing.T, names ...string) *Ring {
	t.Helper()
	r, err := New(names...)
	if err != nil {
		t.Fatalf("New(%q) error: %v", names, err)
	}
	return r
}

func TestJoinMovesOnlyKeysToTheNewNode(t *testing.T) {
	three, four := mustNew(t, servers(3)...), mustNew(t, servers(4)...)
	newNode := servers(4)[3]
	moved := 0
	for _, k := range keys() {
		before, after := three.Node(k), four.Node(k)
		if before == after {
			continue
		}
		moved++
		if after != newNode {
			t.Fatalf("key %q moved from %s to %s; only moves to the new node %s are allowed", k, before, after, newNode)
		}
	}
	frac := float64(moved) / numKeys
	t.Logf("3→4 servers: %.1f %% of %d keys moved (ideal 25 %%)", 100*frac, numKeys)
	if frac > 0.30 {
		t.Errorf("adding a 4th server to 3 moved %.1f %% of keys; want at most 30 %%", 100*frac)
	}
}

func TestLeaveMovesOnlyTheLeavingNodesKeys(t *testing.T) {
	all := servers(4)
	full := mustNew(t, all...)
	ks := keys()
	for gone := range all {
		rest := append(append([]string(nil), all[:gone]...), all[gone+1:]...)
		r := mustNew(t, rest...)
		for _, k := range ks {
			before, after := full.Node(k), r.Node(k)
			if before != all[gone] && before != after {
				t.Fatalf("removing %s moved key %q from %s to %s; keys of the remaining servers must stay", all[gone], k, before, after)
			}
		}
	}
}

func TestEachShareWithin15PercentOfEven(t *testing.T) {
	ks := keys()
	for _, n := range []int{2, 3, 4, 5, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := mustNew(t, servers(n)...)
			count := make([]int, n)
			for _, k := range ks {
				count[r.Pick(k)]++
			}
			even := float64(numKeys) / float64(n)
			worst := 0.0
			for i, c := range count {
				dev := (float64(c) - even) / even
				worst = math.Max(worst, math.Abs(dev))
				if math.Abs(dev) > 0.15 {
					t.Errorf("server %d of %d holds %d keys, %+.1f %% from even (%.0f); want within ±15 %%", i, n, c, 100*dev, even)
				}
			}
			t.Logf("%d servers: worst share %.1f %% from even", n, 100*worst)
		})
	}
}

func TestOrderOfNamesDoesNotMatter(t *testing.T) {
	a := mustNew(t, "a:1", "b:2", "c:3")
	b := mustNew(t, "c:3", "a:1", "b:2")
	for _, k := range keys()[:10_000] {
		if got, want := b.Node(k), a.Node(k); got != want {
			t.Fatalf("Node(%q) = %s with the list reordered; want %s", k, got, want)
		}
	}
}

func TestOneNodeTakesEveryKey(t *testing.T) {
	r := mustNew(t, "only:1")
	for _, k := range []string{"", "a", strings.Repeat("x", 300)} {
		if got := r.Pick(k); got != 0 {
			t.Errorf("Pick(%q) = %d on a one-node ring; want 0", k, got)
		}
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []string
		wantErr string
	}{
		{"nok, no nodes", nil, "rendezvous: no nodes"},
		{"nok, empty name", []string{"a:1", ""}, "node 1 has an empty name"},
		{"nok, repeated name", []string{"a:1", "b:2", "a:1"}, `node "a:1" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.nodes...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%q) = %v, %v; want an error containing %q", tt.nodes, r, err, tt.wantErr)
			}
		})
	}
}

func TestNamesIsACopy(t *testing.T) {
	r := mustNew(t, "a:1", "b:2")
	n := r.Names()
	n[0] = "changed"
	if got := r.Names()[0]; got != "a:1" || r.Len() != 2 {
		t.Errorf("after changing the slice Names returned, Names()[0] = %q, Len() = %d; want \"a:1\", 2", got, r.Len())
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{1, 3, 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r, _ := New(servers(n)...)
			key := "app:1718000000000000000:GET /items/42?page=1"
			for b.Loop() {
				_ = r.Pick(key)
			}
		})
	}
}
