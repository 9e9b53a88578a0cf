package echov5_test

import (
	"testing/fstest"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/pongotag"
)

func pongotagConfig(c *echocache.Cache) pongotag.RendererConfig {
	return pongotag.RendererConfig{
		FS:    fstest.MapFS{"t.html": {Data: []byte(`{% cache 60 "b" %}block{% endcache %}`)}},
		Cache: c,
	}
}
