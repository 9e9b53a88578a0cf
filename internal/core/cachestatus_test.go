package core

import (
	"testing"
	"time"
)

func TestAppendCacheStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		st   CacheStatus
		want string
	}{
		{"ok, hit", "echocache", CacheStatus{Result: ResultHit, TTL: 42*time.Second + 900*time.Millisecond}, "echocache; hit; ttl=42"},
		{"ok, stale while revalidating", "echocache", CacheStatus{Result: ResultStale, TTL: -3 * time.Second}, "echocache; hit; ttl=-3"},
		{"ok, stale in place of a failure", "echocache", CacheStatus{Result: ResultStale, TTL: -3 * time.Second, FwdStatus: 503, Detail: DetailStatus}, "echocache; fwd=stale; fwd-status=503; ttl=-3; detail=status"},
		{"ok, miss stored", "echocache", CacheStatus{Result: ResultMiss, Stored: true}, "echocache; fwd=uri-miss; stored"},
		{"ok, miss collapsed", "echocache", CacheStatus{Result: ResultMiss, Collapsed: true}, "echocache; fwd=uri-miss; collapsed"},
		{"ok, miss not stored", "echocache", CacheStatus{Result: ResultMiss, Detail: DetailSetCookie}, "echocache; fwd=uri-miss; detail=set-cookie"},
		{"ok, bypass", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailAuthorization}, "echocache; fwd=bypass; detail=authorization"},
		{"ok, method", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailMethod}, "echocache; fwd=method; detail=method"},
		{"ok, store error", "echocache", CacheStatus{Result: ResultError, Detail: DetailStoreError}, "echocache; fwd=miss; detail=store-error"},
		{"ok, breaker open", "echocache", CacheStatus{Result: ResultError, Detail: DetailStoreUnavailable}, "echocache; fwd=miss; detail=store-unavailable"},
		{"ok, a name that is not a token is quoted", `app cache "1"`, CacheStatus{Result: ResultHit}, `"app cache \"1\""; hit; ttl=0`},
		{"ok, a token name with punctuation", "cdn.example/app", CacheStatus{Result: ResultHit}, "cdn.example/app; hit; ttl=0"},
		{"nok, control characters dropped", "a\r\nb", CacheStatus{Result: ResultMiss}, `"ab"; fwd=uri-miss`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendCacheStatus(nil, tt.in, tt.st)); got != tt.want {
				t.Errorf("AppendCacheStatus(%q, %+v) = %q; want %q", tt.in, tt.st, got, tt.want)
			}
		})
	}
}

// Every detail constant is an sf-token, written as it is.
func TestDetailsAreTokens(t *testing.T) {
	for _, d := range []string{DetailStoreError, DetailStoreUnavailable, DetailNoStore, DetailSkipper, DetailMethod,
		DetailBody, DetailAuthorization, DetailKey, DetailHead, DetailConditional, DetailError, DetailPanic,
		DetailNoResponse, DetailHijacked, DetailContext, DetailWriteError, DetailLength, DetailTrailer,
		DetailHeaderCase, DetailStatus, DetailSetCookie, DetailCacheControl, DetailVary, DetailTTL, DetailFilter,
		DetailTagError, DetailBadHeader, DetailTooLarge, DetailZeroResult, DetailUnencodable, DetailUnkeyable} {
		if !isSFToken(d) {
			t.Errorf("detail %q is not an sf-token", d)
		}
	}
}
