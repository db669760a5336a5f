package prometheus_test

import (
	"context"
	"reflect"
	"sort"
	"testing"

	"github.com/federation/federation-go/federationtest"
	fedprom "github.com/federation/federation-go/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// TestNamesMatch is the Go side of the cross-language name check: the families client_golang
// gathers carry the names and labels of tests/telemetry-names.json, which the Rust and Python
// tests check too.
func TestNamesMatch(t *testing.T) {
	golden := federationtest.ReadTelemetryNames(t)
	c, sb := startClientSandbox(t)
	if err := sb.SetBehavior("zervigo", "user-service", federationtest.All, federationtest.Behavior{Status: 503}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Get(context.Background(), "user", "/names") // retries, then fails over
	reg := prometheus.NewRegistry()
	reg.MustRegister(fedprom.NewCollector(c))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		want, ok := golden.Metrics[f.GetName()]
		if !ok {
			t.Errorf("%s is not in tests/telemetry-names.json", f.GetName())
			continue
		}
		seen[f.GetName()] = true
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s labels %v, want %v", f.GetName(), got, want)
			}
		}
	}
	for _, name := range []string{"federation_requests_total", "federation_request_duration_seconds",
		"federation_attempts_total", "federation_retries_total", "federation_failovers_total",
		"federation_breaker_state", "federation_discovery_instances"} {
		if !seen[name] {
			t.Errorf("%s not gathered", name)
		}
	}
}
