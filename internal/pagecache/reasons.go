package pagecache

import "github.com/echocache/echocache/internal/core"

// Bypass reasons of a route: the core's detail reasons (core.Detail*,
// the vocabulary of lookups and of Cache-Status), under the names
// echocache.BypassReason documents.
const (
	BypassNoStore       = core.DetailNoStore
	BypassSkipper       = core.DetailSkipper
	BypassMethod        = core.DetailMethod
	BypassBody          = core.DetailBody
	BypassAuthorization = core.DetailAuthorization
	BypassKey           = core.DetailKey
	BypassHead          = core.DetailHead
	BypassConditional   = core.DetailConditional
	BypassError         = core.DetailError
	BypassPanic         = core.DetailPanic
	BypassNoResponse    = core.DetailNoResponse
	BypassHijacked      = core.DetailHijacked
	BypassContext       = core.DetailContext
	BypassWriteError    = core.DetailWriteError
	BypassLength        = core.DetailLength
	BypassTrailer       = core.DetailTrailer
	BypassEventStream   = core.DetailEventStream
	BypassHeaderCase    = core.DetailHeaderCase
	BypassStatus        = core.DetailStatus
	BypassSetCookie     = core.DetailSetCookie
	BypassCacheControl  = core.DetailCacheControl
	BypassVary          = core.DetailVary
	BypassTTL           = core.DetailTTL
	BypassFilter        = core.DetailFilter
	BypassTagError      = core.DetailTagError
	BypassBadHeader     = core.DetailBadHeader
	BypassTooLarge      = core.DetailTooLarge
	BypassInvalidated   = core.DetailInvalidated
	BypassWriteBacklog  = core.DetailWriteBacklog
)
