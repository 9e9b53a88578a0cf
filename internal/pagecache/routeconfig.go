package pagecache

import (
	"fmt"
	"reflect"

	"github.com/echocache/echocache/internal/core"
)

// ConfigFrom returns the engine config of a front end's RouteConfig rc (a
// struct, or a pointer to one) over cache. It is the one mapping of the
// route options, shared by the three front ends (echocache for Echo v4,
// echocache/echov5, echocache/httpcache), whose RouteConfig types have
// the same fields in their framework's shapes:
//   - a field of Config's name and type is copied;
//   - KeyFunc and ResponseFilter, whose types take the framework's
//     context, set CustomKey and Filter when they are not nil (the front
//     end calls them);
//   - Skipper, Unless and Cache are the front end's.
//
// Defaults are left to New. It runs once per middleware, not per request.
// It panics when a Config field has no counterpart in rc: a field added to
// the engine and not to a front end (or renamed in one) fails at once, in
// every test that builds a route.
func ConfigFrom(cache *core.Cache, rc any) Config {
	src := reflect.Indirect(reflect.ValueOf(rc))
	cfg := Config{Cache: cache}
	dst := reflect.ValueOf(&cfg).Elem()
	for i := range dst.NumField() {
		f := dst.Type().Field(i)
		switch f.Name {
		case "Cache":
			continue
		case "CustomKey":
			cfg.CustomKey = !nilField(src, "KeyFunc")
			continue
		case "Filter":
			cfg.Filter = !nilField(src, "ResponseFilter")
			continue
		}
		v := src.FieldByName(f.Name)
		if !v.IsValid() || v.Type() != f.Type {
			panic(fmt.Sprintf("echocache: %v has no field %s %v", src.Type(), f.Name, f.Type))
		}
		dst.Field(i).Set(v)
	}
	return cfg
}

// nilField reports whether the func field name of v is nil. It panics
// when v has no such field.
func nilField(v reflect.Value, name string) bool {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.Func {
		panic(fmt.Sprintf("echocache: %v has no func field %s", v.Type(), name))
	}
	return f.IsNil()
}
