package proverbs

import "testing"

func TestRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		seen[Random()] = true
	}
	if len(seen) < 2 {
		t.Errorf("1000 calls of Random gave %d distinct proverbs; want several", len(seen))
	}
}

func TestRotate(t *testing.T) {
	restore := Rotate()
	defer restore()
	prev := Random()
	for range 2 * len(Proverbs) {
		cur := Random()
		if cur == prev {
			t.Fatalf("Random() = %q twice in a row while rotating", cur)
		}
		prev = cur
	}
}
