package core

import (
	"context"
	"errors"
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
		{"ok, stale by half a second", "echocache", CacheStatus{Result: ResultStale, TTL: -500 * time.Millisecond}, "echocache; hit; ttl=-1"},
		{"ok, stale in place of a handler error", "echocache", CacheStatus{Result: ResultStale, Fwd: FwdStale, TTL: -3 * time.Second, Detail: DetailError}, "echocache; fwd=stale; ttl=-3; detail=error"},
		{"ok, hit without expiry", "echocache", CacheStatus{Result: ResultHit, NoExpiry: true}, "echocache; hit"},
		{"ok, miss stored", "echocache", CacheStatus{Result: ResultMiss, Stored: true, TTL: time.Minute}, "echocache; fwd=uri-miss; ttl=60; stored"},
		{"ok, miss stored without expiry", "echocache", CacheStatus{Result: ResultMiss, Stored: true, NoExpiry: true}, "echocache; fwd=uri-miss; stored"},
		{"ok, another variant", "echocache", CacheStatus{Result: ResultMiss, Fwd: FwdVaryMiss, Stored: true, TTL: time.Minute}, "echocache; fwd=vary-miss; ttl=60; stored"},
		{"ok, expired", "echocache", CacheStatus{Result: ResultMiss, Fwd: FwdStale, Detail: DetailStatus}, "echocache; fwd=stale; detail=status"},
		{"ok, a hit ignores Fwd", "echocache", CacheStatus{Result: ResultHit, Fwd: FwdStale, TTL: time.Second}, "echocache; hit; ttl=1"},
		{"ok, miss collapsed", "echocache", CacheStatus{Result: ResultMiss, Collapsed: true}, "echocache; fwd=uri-miss; collapsed"},
		{"ok, skipped", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailSkipper}, "echocache; fwd=bypass; detail=skipper"},
		{"ok, miss not stored", "echocache", CacheStatus{Result: ResultMiss, Detail: DetailSetCookie}, "echocache; fwd=uri-miss; detail=set-cookie"},
		{"ok, bypass", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailAuthorization}, "echocache; fwd=bypass; detail=authorization"},
		{"ok, method", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailMethod}, "echocache; fwd=method; detail=method"},
		{"ok, store error", "echocache", CacheStatus{Result: ResultError, Detail: DetailStoreError}, "echocache; fwd=miss; detail=store-error"},
		{"ok, no store yet", "echocache", CacheStatus{Result: ResultBypass, Detail: DetailNoStore}, "echocache; fwd=bypass; detail=uninitialized"},
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
		DetailTagError, DetailBadHeader, DetailInvalidated, DetailWriteBacklog, DetailTooLarge, DetailZeroResult, DetailUnencodable, DetailUnkeyable} {
		if !isSFToken(d) {
			t.Errorf("detail %q is not an sf-token", d)
		}
	}
}

func TestValidCacheStatusName(t *testing.T) {
	for name, want := range map[string]bool{
		"echocache": true, "app cache": true, `"quoted"`: true, "cdn.example/app": true,
		"": false, "a\r\nb": false, "caf\u00e9": false, "tab\there": false,
	} {
		if got := ValidCacheStatusName(name); got != want {
			t.Errorf("ValidCacheStatusName(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestLookupFailure(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(live)
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantResult Result
		wantDetail string
	}{
		{"nok, a store error", live, errors.New("dial tcp: refused"), ResultError, DetailStoreError},
		{"nok, the breaker is open", live, ErrStoreUnavailable, ResultError, DetailStoreUnavailable},
		{"nok, the caller gave up", ended, errors.New("i/o timeout"), ResultError, DetailContext},
		{"nok, no store yet", live, ErrNoStore, ResultBypass, DetailNoStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, d := LookupFailure(tt.ctx, tt.err)
			if r != tt.wantResult || d != tt.wantDetail {
				t.Errorf("LookupFailure(%v) = %v, %q; want %v, %q", tt.err, r, d, tt.wantResult, tt.wantDetail)
			}
		})
	}
}
