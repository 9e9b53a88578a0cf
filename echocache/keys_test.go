package echocache

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A custom SchemeExtractor that answers in upper case still finds its pages.
func TestCachedSchemeExtractorCase(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	env.e.SchemeExtractor = func(*http.Request) string { return "HTTPS" }
	env.e.GET("/p", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	env.do(http.MethodGet, "/p", "X-Forwarded-Proto", "https")
	assert.Equal(t, StatusHit, env.do(http.MethodGet, "/p", "X-Forwarded-Proto", "https").Header().Get("X-Cache"))
}

// Echo's X-Forwarded-Proto (from any peer under Echo v4's defaults) keys
// an https page apart from the http one.
func TestCachedForwardedScheme(t *testing.T) {
	c := New(openMWStore(t, "memory"))
	env := newRouteEnv(t, c)
	env.e.GET("/p", env.textHandler(), c.CachedWithConfig(env.cfg(time.Minute)))
	env.do(http.MethodGet, "/p")
	rec := env.do(http.MethodGet, "/p", "X-Forwarded-Proto", "https", "RemoteAddr", "127.0.0.1:4000")
	assert.Equal(t, StatusMiss, rec.Header().Get("X-Cache"))
	assert.Equal(t, "page /p #2", rec.Body.String())
}
