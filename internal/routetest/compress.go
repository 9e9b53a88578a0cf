package routetest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/internal/core"
	"github.com/echocache/echocache/internal/pagecache"
	"github.com/echocache/echocache/internal/record"
)

// compressed: a 64 KiB page on redis is stored compressed and served whole
// on a hit, with the header a plain page would have, Vary and variant
// records included.
func compressed(t *testing.T, fe Frontend) {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, "<tr id=\"row-%d\"><td>%x</td><td class=\"price\">%d.%02d</td></tr>\n", i, i*2654435761, i*37%1000, i%100)
	}
	body := b.String()
	for _, tt := range []struct {
		name string
		cfg  echocache.Config
		want bool // stored compressed
	}{{"ok, compressed", echocache.Config{}, true}, {"ok, plain", echocache.Config{CompressMinSize: -1}, false}} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := echocache.NewWithConfig(openStore(t, "redis"), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			app := fe.NewApp(t, c)
			app.Route("/big", Config{TTL: minute, VaryHeaders: []string{"Accept-Language"}}, func(ctx Ctx) error {
				ctx.Response().Header().Set("Content-Type", "text/html; charset=UTF-8")
				return text(http.StatusOK, body)(ctx)
			})
			for _, lang := range []string{"en", "fr"} {
				for i, want := range []string{echocache.StatusMiss, echocache.StatusHit} {
					rec := Do(app, "", "/big", "Accept-Language", lang)
					if got := rec.Header().Get("X-Cache"); got != want || rec.Body.String() != body {
						t.Fatalf("GET /big (%s) #%d: X-Cache %q, %d bytes; want %q and the %d-byte page", lang, i+1, got, rec.Body.Len(), want, len(body))
					}
					if got := rec.Header().Get("Content-Type"); got != "text/html; charset=UTF-8" {
						t.Errorf("GET /big (%s) #%d: Content-Type %q", lang, i+1, got)
					}
				}
			}
			settle(t, c) // the page is written after its response
			key := pagecache.PageKeys((*core.Cache)(c), "/big", "")[0]
			raw, err := c.Store().Get(context.Background(), key)
			if err != nil {
				t.Fatalf("the store's Get of the page record: %v", err)
			}
			if got := record.Is(raw, record.Compressed); got != tt.want {
				t.Errorf("page record of %d bytes is compressed = %v; want %v", len(raw), got, tt.want)
			}
		})
	}
}
