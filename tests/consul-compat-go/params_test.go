package consulcompat

import (
	"net/http"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

func TestQueryOptionsTheClientSends(t *testing.T) {
	d := startDouble(t)
	threeInstances(t, d)
	health := d.client.Health()
	q := &consul.QueryOptions{
		Near: "_agent", AllowStale: true, UseCache: true,
		Filter:   `Service.Meta.zone != "b" and Checks.Status != "warning"`,
		NodeMeta: map[string]string{"consul-network-segment": ""},
	}
	entries, meta, err := health.Service("orders", "", false, q)
	if err != nil || strings.Join(ids(entries), ",") != "orders-1" {
		t.Fatalf("near+stale+cached+filter+node-meta: %v %v", err, ids(entries))
	}
	if meta.CacheHit {
		t.Fatalf("the first ?cached read is a cache MISS")
	}
	_, meta, err = health.Service("orders", "", false, q)
	if err != nil || !meta.CacheHit {
		t.Fatalf("a repeated ?cached read is a HIT: %v %+v", err, meta)
	}
	entries, _, err = health.Service("orders", "", false, &consul.QueryOptions{NodeMeta: map[string]string{"rack": "r1"}})
	if err != nil || len(entries) != 0 {
		t.Fatalf("node-meta naming metadata the node lacks selects nothing: %v %v", err, ids(entries))
	}
	entries, _, err = health.Service("orders", "", false, &consul.QueryOptions{Datacenter: "zervigo-dc", RequireConsistent: true})
	if err != nil || len(entries) != 3 {
		t.Fatalf("own datacenter, consistent: %v %v", err, ids(entries))
	}

	refused := []struct {
		q    consul.QueryOptions
		want string
	}{
		{consul.QueryOptions{Namespace: "team"}, `400 (Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature)`},
		{consul.QueryOptions{Partition: "p1"}, `400 (Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature)`},
		{consul.QueryOptions{Datacenter: "looma-dc"}, "500 (No path to datacenter)"},
		{consul.QueryOptions{AllowStale: true, RequireConsistent: true}, "400 (Cannot specify ?stale with ?consistent, conflicting semantics.)"},
		{consul.QueryOptions{Filter: `Service.Name matches "^o"`}, "500 (Failed to create boolean expression evaluator: "},
	}
	for _, c := range refused {
		_, _, err := health.Service("orders", "", false, &c.q)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want %q, got %v", c.q, c.want, err)
		}
	}
}

func TestWaitDurationFormats(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders"})
	_, meta, err := d.client.Health().Service("orders", "", false, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	index := meta.LastIndex
	for _, wait := range []string{"200ms", "0.2s", "200000us", "200000000ns", "0m0.2s"} {
		started := time.Now()
		status, body, _ := rawGet(t, d, "/v1/health/service/orders?index="+itoa(index)+"&wait="+wait)
		held := time.Since(started)
		if status != http.StatusOK || held < 200*time.Millisecond || held > 5*time.Second {
			t.Errorf("wait=%s: %d %s after %s (want 200 after about 200ms)", wait, status, body, held)
		}
	}
	for _, wait := range []string{"10", "5x", "s"} {
		status, body, _ := rawGet(t, d, "/v1/health/service/orders?index="+itoa(index)+"&wait="+wait)
		if status != http.StatusBadRequest || body != "Invalid wait time" {
			t.Errorf("wait=%s: %d %q, want 400 Invalid wait time", wait, status, body)
		}
	}
}

func TestUnknownEndpointsAndParametersAnswerLikeConsul(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders"})
	// An endpoint the double does not implement: Consul's 404 for an unknown path, never a
	// decode error about the double's own types.
	_, err := d.client.Agent().Members(false)
	if err == nil || !strings.Contains(err.Error(), "404 (Invalid URL path: not a recognized HTTP API endpoint)") {
		t.Fatalf("agent/members: %v", err)
	}
	// Parameters Consul does not know are ignored.
	status, body, _ := rawGet(t, d, "/v1/health/service/orders?merge-central-config&whatever=1")
	if status != http.StatusOK || !strings.Contains(body, `"orders-1"`) {
		t.Fatalf("unknown parameters: %d %s", status, body)
	}
	// A wrong verb is 405 with Allow, as Consul answers.
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(d.url, "/")+"/v1/agent/service/register", nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET register: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "OPTIONS,PUT" {
		t.Fatalf("GET register: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// A body that is not JSON is Consul's decode failure, with Go-like wording kept to the input.
	put, err := http.NewRequest(http.MethodPut, strings.TrimSuffix(d.url, "/")+"/v1/agent/service/register", strings.NewReader("{"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatalf("PUT register: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT register with a broken body: %d", resp.StatusCode)
	}
}
