package pagecache

import "github.com/echocache/echocache/internal/core"

// Bypass reasons of a route, as counted in the core (echocache.BypassReason
// documents each one under the same name).
const (
	BypassNoStore       = "no-store"
	BypassSkipper       = "skipper"
	BypassMethod        = "method"
	BypassBody          = "body"
	BypassAuthorization = "authorization"
	BypassKey           = "key"
	BypassHead          = "head"
	BypassConditional   = "conditional"
	BypassError         = "error"
	BypassPanic         = "panic"
	BypassNoResponse    = "no-response"
	BypassHijacked      = "hijacked"
	BypassContext       = "context"
	BypassWriteError    = "write-error"
	BypassLength        = "length"
	BypassTrailer       = "trailer"
	BypassHeaderCase    = "header-case"
	BypassStatus        = "status"
	BypassSetCookie     = "set-cookie"
	BypassCacheControl  = "cache-control"
	BypassVary          = "vary"
	BypassTTL           = "ttl"
	BypassFilter        = "filter"
	BypassTagError      = "tag-error"
	BypassBadHeader     = "bad-header"
	BypassTooLarge      = core.BypassTooLarge
)
