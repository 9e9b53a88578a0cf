package stores

import (
	"fmt"
	"math"
	"strconv"
)

// parseCounter reads v as a counter in the one form every store accepts
// (see [Incrementer]): Redis's (string2ll in its util.c), an optional '-'
// then decimal digits, with no leading zero except the number 0 itself,
// within int64, and nothing else — no '+', no spaces, no "-0". Anything
// else gives ErrNotInteger.
func parseCounter(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > len("-9223372036854775808") {
		return 0, fmt.Errorf("%w: %.32q", ErrNotInteger, v)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || !canonicalInt(v, n) {
		return 0, fmt.Errorf("%w: %.32q", ErrNotInteger, v)
	}
	return n, nil
}

// canonicalInt reports whether v is how strconv.FormatInt writes n.
func canonicalInt(v []byte, n int64) bool {
	var buf [20]byte
	return string(strconv.AppendInt(buf[:0], n, 10)) == string(v)
}

// addCounter parses v with parseCounter and adds delta. A value not in the
// counter form, or a sum that leaves int64, gives ErrNotInteger.
func addCounter(v []byte, delta int64) (int64, error) {
	n, err := parseCounter(v)
	if err != nil {
		return 0, err
	}
	if delta > 0 && n > math.MaxInt64-delta || delta < 0 && n < math.MinInt64-delta {
		return 0, fmt.Errorf("%w: %d%+d overflows int64", ErrNotInteger, n, delta)
	}
	return n + delta, nil
}
