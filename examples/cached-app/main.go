// Command cached-app is the walkthrough's "Enabling Flask-Cache for views":
// GET / returns the current time, cached for 5 minutes by the route
// middleware, so refreshing the page shows the same time until the entry
// expires. The response header X-Cache says HIT or MISS.
//
// server.go is the step itself; main opens the store named by $CACHE_URL
// and serves on $ADDR, as every example does.
//
//	go run ./examples/cached-app
//	CACHE_URL=redis://127.0.0.1:6379/0 go run ./examples/cached-app
package main

import "github.com/echocache/echocache/examples/internal/demo"

func main() {
	demo.Main(newServer)
}
