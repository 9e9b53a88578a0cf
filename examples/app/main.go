// Command app is the walkthrough's first step, a plain Echo app without a
// cache: GET / returns the current time, fresh on every request.
//
//	go run ./examples/app
//	curl http://127.0.0.1:5000/
package main

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/echocache/echocache/examples/internal/demo"
)

func newServer() *echo.Echo {
	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return c.String(http.StatusOK, time.Now().Format(time.RFC3339Nano))
	})
	return e
}

func main() {
	demo.Run(newServer())
}
