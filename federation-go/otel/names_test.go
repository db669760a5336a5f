package otel_test

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/federation/federation-go/federationtest"
	fedotel "github.com/federation/federation-go/otel"
)

// TestNamesMatch is the Go side of the cross-language span check: the call and attempt spans carry the
// names and attributes of tests/telemetry-names.json, which the Rust and Python tests check too.
func TestNamesMatch(t *testing.T) {
	golden := federationtest.ReadTelemetryNames(t)
	sb, c := start(t)
	// A failed attempt first (error_kind), then a successful one (status): every attribute.
	if err := sb.SetBehavior("zervigo", "user-service", federationtest.All, federationtest.Behavior{Status: 503}); err != nil {
		t.Fatal(err)
	}
	exporter, tp := tracer(t)
	if _, err := fedotel.New(c, fedotel.WithTracerProvider(tp)).Get(context.Background(), "user", "/names"); err != nil {
		t.Fatal(err)
	}
	keys := map[string]map[string]bool{}
	for _, s := range exporter.GetSpans() {
		if keys[s.Name] == nil {
			keys[s.Name] = map[string]bool{}
		}
		for _, kv := range s.Attributes {
			keys[s.Name][string(kv.Key)] = true
		}
	}
	got := map[string][]string{}
	for name, set := range keys {
		for k := range set {
			got[name] = append(got[name], k)
		}
		sort.Strings(got[name])
	}
	if !reflect.DeepEqual(got, golden.Spans) {
		t.Fatalf("spans and attributes %v, want %v", got, golden.Spans)
	}
}
