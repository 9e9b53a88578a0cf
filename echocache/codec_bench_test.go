package echocache_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
)

// benchSmall is a typical small cached value: a user record.
type benchSmall struct {
	ID      int64
	Name    string
	Email   string
	Admin   bool
	Score   float64
	Created time.Time
}

type benchItem struct {
	ID    int64
	Title string
	Tags  []string
	Price float64
}

// benchLarge encodes to about 10 KiB with each codec: a page of results.
type benchLarge struct {
	Items []benchItem
	Next  string
}

func newBenchSmall() benchSmall {
	return benchSmall{ID: 42, Name: "Gopher", Email: "gopher@example.com", Admin: true, Score: 3.5,
		Created: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)}
}

func newBenchLarge() benchLarge {
	var l benchLarge
	for i := range 80 {
		l.Items = append(l.Items, benchItem{ID: int64(i), Title: fmt.Sprintf("item %03d %s", i, strings.Repeat("x", 60)),
			Tags: []string{"go", "cache", "echo"}, Price: float64(i) * 1.25})
	}
	l.Next = "cursor-0123456789"
	return l
}

var benchCodecs = []struct {
	name  string
	codec echocache.Codec
}{
	{"cbor-default", echocache.DefaultCodec},
	{"json", echocache.JSONCodec{}},
	{"gob", echocache.GobCodec{}},
}

// BenchmarkCodec compares the default codec with encoding/json and
// encoding/gob: marshal and unmarshal of a small struct and of a struct
// that encodes to about 10 KiB. The "bytes" metric is the encoded size.
func BenchmarkCodec(b *testing.B) {
	values := []struct {
		name string
		v    any
		zero func() any
	}{
		{"small", newBenchSmall(), func() any { return new(benchSmall) }},
		{"10KiB", newBenchLarge(), func() any { return new(benchLarge) }},
	}
	for _, val := range values {
		for _, c := range benchCodecs {
			data, err := c.codec.Marshal(val.v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(val.name+"/"+c.name+"/marshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.codec.Marshal(val.v); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(data)), "bytes")
			})
			b.Run(val.name+"/"+c.name+"/unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.codec.Unmarshal(data, val.zero()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(data)), "bytes")
			})
		}
	}
}
