package prometheus_test

import (
	"context"
	"strings"
	"testing"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
	fedprom "github.com/federation/federation-go/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func startClient(t *testing.T) *federation.Client {
	t.Helper()
	c, _ := startClientSandbox(t)
	return c
}

func startClientSandbox(t *testing.T) (*federation.Client, *federationtest.Sandbox) {
	sb, c := federationtest.StartWithClient(t, "user")
	return c, sb
}

func find(t *testing.T, families []*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("family %s missing", name)
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// The client's series appear on a client_golang registry as typed families.
func TestCollectorYieldsTypedFamilies(t *testing.T) {
	c := startClient(t)
	for range 3 {
		if _, err := c.Get(context.Background(), "user", "/items/1"); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fedprom.NewCollector(c))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	requests := find(t, families, "federation_requests_total")
	if requests.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("requests type %v", requests.GetType())
	}
	var success float64
	for _, m := range requests.GetMetric() {
		if label(m, "service") == "user" && label(m, "outcome") == "success" {
			success += m.GetCounter().GetValue()
		}
	}
	if success < 4 { // the readiness call and three more
		t.Fatalf("user successes = %v, want >= 4", success)
	}
	duration := find(t, families, "federation_request_duration_seconds")
	if duration.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("duration type %v", duration.GetType())
	}
	h := duration.GetMetric()[0].GetHistogram()
	bounds := map[float64]bool{}
	for _, b := range h.GetBucket() {
		bounds[b.GetUpperBound()] = true
	}
	if !bounds[0.3] || h.GetSampleCount() == 0 {
		t.Fatalf("histogram buckets %v count %d", bounds, h.GetSampleCount())
	}
	if find(t, families, "federation_breaker_state").GetType() != dto.MetricType_GAUGE {
		t.Fatal("breaker state is not a gauge")
	}
}

type broken struct{}

func (broken) Metrics() (string, error) { return "federation_x{a=\"1\" 2\n", nil }

// Unreadable metrics fail the scrape instead of silently dropping series.
func TestUnreadableMetricsFailTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(fedprom.NewCollector(broken{}))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "metrics line 1") {
		t.Fatalf("gather error = %v", err)
	}
}
