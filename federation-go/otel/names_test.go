package otel_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"

	fedotel "github.com/federation/federation-go/otel"
)

// TestNamesMatch is the Go side of the cross-language span check: the call span carries the
// name and attributes of tests/telemetry-names.json, which the Rust and Python tests check too.
// (Go records no federation.attempt spans yet: see the package documentation.)
func TestNamesMatch(t *testing.T) {
	raw, err := os.ReadFile("../../tests/telemetry-names.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Spans map[string][]string `json:"spans"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	_, c := start(t)
	exporter, tp := tracer(t)
	if _, err := fedotel.New(c, fedotel.WithTracerProvider(tp)).Get(context.Background(), "user", "/names"); err != nil {
		t.Fatal(err)
	}
	call := only(t, exporter, fedotel.CallSpan)
	var got []string
	for _, kv := range call.Attributes {
		got = append(got, string(kv.Key))
	}
	sort.Strings(got)
	if want := golden.Spans[fedotel.CallSpan]; !reflect.DeepEqual(got, want) {
		t.Fatalf("%s attributes %v, want %v", fedotel.CallSpan, got, want)
	}
}
