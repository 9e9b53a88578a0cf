// Package flight is stampede protection: concurrent callers that need the
// same key computed share one computation instead of each running it.
//
// It has two forms, for the two places a computation can run:
//
//   - [Group] (group.go) runs a call on a goroutine of its own, detached
//     from its callers' contexts, and hands its result, or its error, to
//     every caller: the typed API's loaders (GetOrSet, Function, Memoize).
//   - [Turns] (turns.go) lets one caller at a time run the work on its own
//     goroutine (a handler writing a response, a template rendering a
//     block, which cannot move to another goroutine), and shares only what
//     that caller publishes. A caller that publishes nothing (a failure, an
//     answer of its own) hands its turn to the next waiter, which runs the
//     work itself: no waiter ever receives another caller's error or
//     private result. The route middleware and the template tag use it.
package flight
