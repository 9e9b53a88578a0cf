package pagecache_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/echocache/echocache/echocache"
	"github.com/echocache/echocache/echocache/echov5"
	"github.com/echocache/echocache/echocache/httpcache"
	"github.com/echocache/echocache/internal/pagecache"
)

// routeConfigs are the RouteConfig types of the three front ends.
var routeConfigs = []reflect.Type{
	reflect.TypeFor[echocache.RouteConfig](),
	reflect.TypeFor[echov5.RouteConfig](),
	reflect.TypeFor[httpcache.RouteConfig](),
}

// onlyIn are the fields one front end has and the others do not, and why.
var onlyIn = map[string]reflect.Type{
	// Deprecated, kept for compatibility: folded into Skipper.
	"Unless": reflect.TypeFor[echocache.RouteConfig](),
}

// The three RouteConfig types keep the same fields, in the same order,
// of the same types but for the framework's: a func's first parameter
// (the framework's context or request), the Cache.
func TestRouteConfigsHaveTheSameFields(t *testing.T) {
	type field struct {
		name string
		typ  string
	}
	fields := func(rt reflect.Type) []field {
		var out []field
		for f := range rt.Fields() {
			if !f.IsExported() {
				t.Errorf("%v has an unexported field %s: a front end's option the others lack", rt, f.Name)
				continue
			}
			if onlyIn[f.Name] == rt {
				continue
			}
			out = append(out, field{f.Name, neutral(f.Type)})
		}
		return out
	}
	want := fields(routeConfigs[0])
	for _, rt := range routeConfigs[1:] {
		if got := fields(rt); !slices.Equal(got, want) {
			t.Errorf("%v fields:\n%v\nwant those of %v:\n%v", rt, got, routeConfigs[0], want)
		}
	}
}

// neutral returns t's name without the framework: a func type's first
// parameter is left out.
func neutral(t reflect.Type) string {
	if t.Kind() != reflect.Func {
		return t.String()
	}
	s := "func(_"
	for i := 1; i < t.NumIn(); i++ {
		s += ", " + t.In(i).String()
	}
	s += ")"
	for i := range t.NumOut() {
		s += " " + t.Out(i).String()
	}
	return s
}

// ConfigFrom maps every option of each RouteConfig into the engine's
// Config: a RouteConfig with every field set gives a Config with every
// field set, with the same values.
func TestConfigFromMapsEveryField(t *testing.T) {
	for _, rt := range routeConfigs {
		t.Run(rt.String(), func(t *testing.T) {
			rc := reflect.New(rt).Elem()
			for i := range rt.NumField() {
				f := rc.Field(i)
				switch f.Kind() {
				case reflect.Func:
					f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value {
						return []reflect.Value{reflect.Zero(f.Type().Out(0))}
					}))
				case reflect.Pointer:
					f.Set(reflect.New(f.Type().Elem()))
				case reflect.Slice:
					f.Set(reflect.MakeSlice(f.Type(), 1, 1))
				case reflect.String:
					f.SetString(rt.Field(i).Name)
				case reflect.Bool:
					f.SetBool(true)
				case reflect.Int64:
					f.SetInt(int64(time.Duration(i+1) * time.Second))
				default:
					t.Fatalf("field %s of kind %v: teach this test to set it", rt.Field(i).Name, f.Kind())
				}
			}
			cfg := pagecache.ConfigFrom(nil, rc.Addr().Interface())
			got := reflect.ValueOf(cfg)
			for i := range got.NumField() {
				name := got.Type().Field(i).Name
				if name == "Cache" {
					continue
				}
				if got.Field(i).IsZero() {
					t.Errorf("Config.%s is not set from %v", name, rt)
					continue
				}
				if src := rc.FieldByName(name); src.IsValid() && src.Kind() != reflect.Slice && !reflect.DeepEqual(src.Interface(), got.Field(i).Interface()) {
					t.Errorf("Config.%s = %v; want %v, the RouteConfig's", name, got.Field(i), src)
				}
			}
		})
	}
}
