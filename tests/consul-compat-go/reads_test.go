package consulcompat

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// threeInstances registers orders-1..3 with TTL checks and tags, and sets their statuses.
func threeInstances(t *testing.T, d *double) {
	t.Helper()
	tags := [][]string{{"v2", "grpc"}, {"v2"}, {"v1", "grpc"}}
	for i, id := range []string{"orders-1", "orders-2", "orders-3"} {
		register(t, d, &consul.AgentServiceRegistration{
			ID: id, Name: "orders", Address: "127.0.0.1", Port: 8081 + i, Tags: tags[i],
			Meta:  map[string]string{"zone": string(rune('a' + i))},
			Check: &consul.AgentServiceCheck{CheckID: id + ":ttl", TTL: "30s"},
		})
	}
	agent := d.client.Agent()
	for _, err := range []error{
		agent.PassTTL("orders-1:ttl", ""), agent.PassTTL("orders-2:ttl", ""), agent.WarnTTL("orders-3:ttl", ""),
	} {
		if err != nil {
			t.Fatalf("TTL update: %v", err)
		}
	}
}

func ids(entries []*consul.ServiceEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Service.ID)
	}
	sort.Strings(out)
	return out
}

func TestHealthServicePassingAndTags(t *testing.T) {
	d := startDouble(t)
	threeInstances(t, d)
	health := d.client.Health()
	check := func(what string, entries []*consul.ServiceEntry, meta *consul.QueryMeta, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := strings.Join(ids(entries), ","); got != want {
			t.Fatalf("%s: got %s, want %s", what, got, want)
		}
		if meta.LastIndex == 0 || !meta.KnownLeader {
			t.Fatalf("%s: X-Consul-Index %d, KnownLeader %v", what, meta.LastIndex, meta.KnownLeader)
		}
	}
	entries, meta, err := health.Service("orders", "", false, nil)
	check("all", entries, meta, err, "orders-1,orders-2,orders-3")
	entries, meta, err = health.Service("orders", "", true, nil)
	check("passing (a warning is not passing)", entries, meta, err, "orders-1,orders-2")
	entries, meta, err = health.Service("orders", "grpc", false, nil)
	check("tag grpc", entries, meta, err, "orders-1,orders-3")
	entries, meta, err = health.ServiceMultipleTags("orders", []string{"V2", "GRPC"}, false, nil)
	check("tags v2 AND grpc, case-insensitive", entries, meta, err, "orders-1")
	entries, meta, err = health.Service("nope", "", false, nil)
	check("unknown service: [] with 200", entries, meta, err, "")
}

func TestHealthServiceBlockingQuery(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders"})
	health := d.client.Health()
	_, meta, err := health.Service("orders", "", false, nil)
	if err != nil {
		t.Fatalf("first read: %v", err)
	}
	first := meta.LastIndex

	// Nothing changes: the query holds for WaitTime and returns the same index.
	started := time.Now()
	_, meta, err = health.Service("orders", "", false, &consul.QueryOptions{WaitIndex: first, WaitTime: 300 * time.Millisecond})
	held := time.Since(started)
	if err != nil || meta.LastIndex != first {
		t.Fatalf("timed-out blocking query: %v, index %d (want %d)", err, meta.LastIndex, first)
	}
	if held < 300*time.Millisecond || held > 5*time.Second {
		t.Fatalf("a blocking query without change holds for WaitTime (300ms), held %s", held)
	}

	// A change returns the query early with a higher index and the new state.
	type answer struct {
		entries []*consul.ServiceEntry
		meta    *consul.QueryMeta
		err     error
		took    time.Duration
	}
	done := make(chan answer, 1)
	go func() {
		started := time.Now()
		entries, meta, err := health.Service("orders", "", false, &consul.QueryOptions{WaitIndex: first, WaitTime: 20 * time.Second})
		done <- answer{entries, meta, err, time.Since(started)}
	}()
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-2", Name: "orders"})
	select {
	case a := <-done:
		if a.err != nil || a.meta.LastIndex <= first || len(a.entries) != 2 {
			t.Fatalf("woken query: %v, index %d (was %d), %d entries", a.err, a.meta.LastIndex, first, len(a.entries))
		}
		if a.took > 10*time.Second {
			t.Fatalf("the query returned on its timeout (%s), not on the change", a.took)
		}
	case <-time.After(eventuallyWithin):
		t.Fatalf("blocking query not woken by a registration within %s", eventuallyWithin)
	}
}

func TestCatalogReads(t *testing.T) {
	d := startDouble(t)
	threeInstances(t, d)
	services, meta, err := d.client.Catalog().Services(nil)
	if err != nil || meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("catalog/services: %v %+v", err, meta)
	}
	consulTags, hasConsul := services["consul"]
	if !hasConsul || len(consulTags) != 0 || strings.Join(services["orders"], ",") != "grpc,v1,v2" {
		t.Fatalf("catalog/services map: %+v", services)
	}
	nodes, meta, err := d.client.Catalog().Service("orders", "v1", nil)
	if err != nil || meta.LastIndex == 0 || len(nodes) != 1 {
		t.Fatalf("catalog/service?tag=v1: %v %+v", err, nodes)
	}
	n := nodes[0]
	if n.ServiceID != "orders-3" || n.ServicePort != 8083 || n.ServiceAddress != "127.0.0.1" || n.Datacenter != "zervigo-dc" || n.ServiceMeta["zone"] != "c" {
		t.Fatalf("catalog/service entry: %+v", n)
	}
	// Blocking on the catalog map: a new service name wakes it.
	done := make(chan uint64, 1)
	go func() {
		_, meta, err := d.client.Catalog().Services(&consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			done <- 0
			return
		}
		done <- meta.LastIndex
	}()
	before := meta.LastIndex
	register(t, d, &consul.AgentServiceRegistration{ID: "billing-1", Name: "billing"})
	select {
	case after := <-done:
		if after <= before {
			t.Fatalf("catalog/services woken with index %d (was %d)", after, before)
		}
	case <-time.After(eventuallyWithin):
		t.Fatalf("catalog/services not woken by a new service")
	}
}

func TestAgentReadsAndLeader(t *testing.T) {
	d := startDouble(t)
	threeInstances(t, d)
	services, err := d.client.Agent().ServicesWithFilter(`"grpc" in Tags`)
	if err != nil || len(services) != 2 || services["orders-1"] == nil || services["orders-3"] == nil {
		t.Fatalf("agent/services?filter: %v %+v", err, services)
	}
	checks, err := d.client.Agent().ChecksWithFilter(`Status == "warning"`)
	if err != nil || len(checks) != 1 || checks["orders-3:ttl"] == nil {
		t.Fatalf("agent/checks?filter: %v %+v", err, checks)
	}
	leader, err := d.client.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("status/leader: %q %v", leader, err)
	}
	// Index headers where Consul sends them: blocking reads yes, agent reads and status no.
	for path, wantIndex := range map[string]bool{
		"/v1/health/service/orders": true, "/v1/catalog/service/orders": true, "/v1/catalog/services": true,
		"/v1/agent/services": false, "/v1/agent/checks": false, "/v1/status/leader": false,
	} {
		status, body, header := rawGet(t, d, path)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		_, hasIndex := header["X-Consul-Index"]
		_, hasLeader := header["X-Consul-Knownleader"]
		if hasIndex != wantIndex || hasLeader != wantIndex {
			t.Errorf("GET %s: X-Consul-Index present %v, X-Consul-KnownLeader present %v, want %v", path, hasIndex, hasLeader, wantIndex)
		}
		if wantIndex && (header.Get("X-Consul-Index") == "0" || header.Get("X-Consul-Knownleader") != "true") {
			t.Errorf("GET %s: index %q, known leader %q", path, header.Get("X-Consul-Index"), header.Get("X-Consul-Knownleader"))
		}
	}
}

func TestAgentServiceHashBlocking(t *testing.T) {
	d := startDouble(t)
	reg := &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders", Tags: []string{"v1"}}
	register(t, d, reg)
	agent := d.client.Agent()
	_, meta, err := agent.Service("orders-1", nil)
	if err != nil || meta.LastContentHash == "" {
		t.Fatalf("agent/service: %v, hash %q", err, meta.LastContentHash)
	}
	hash := meta.LastContentHash

	started := time.Now()
	_, meta, err = agent.Service("orders-1", &consul.QueryOptions{WaitHash: hash, WaitTime: 300 * time.Millisecond})
	held := time.Since(started)
	if err != nil || meta.LastContentHash != hash || held < 300*time.Millisecond || held > 5*time.Second {
		t.Fatalf("unchanged service: %v, hash %q (was %q), held %s (want about 300ms)", err, meta.LastContentHash, hash, held)
	}

	done := make(chan *consul.AgentService, 1)
	go func() {
		svc, _, err := agent.Service("orders-1", &consul.QueryOptions{WaitHash: hash, WaitTime: 20 * time.Second})
		if err != nil {
			done <- nil
			return
		}
		done <- svc
	}()
	reg.Tags = []string{"v2"}
	register(t, d, reg)
	select {
	case svc := <-done:
		if svc == nil || len(svc.Tags) != 1 || svc.Tags[0] != "v2" || svc.ContentHash == hash {
			t.Fatalf("woken hash-blocking query: %+v", svc)
		}
	case <-time.After(eventuallyWithin):
		t.Fatalf("hash-blocking agent/service not woken by a re-registration")
	}
}

func TestHealthChecksOfAService(t *testing.T) {
	d := startDouble(t)
	threeInstances(t, d)
	checks, meta, err := d.client.Health().Checks("orders", nil)
	if err != nil || meta.LastIndex == 0 || !meta.KnownLeader || len(checks) != 3 {
		t.Fatalf("health/checks/orders: %v %+v %d checks", err, meta, len(checks))
	}
	if checks.AggregatedStatus() != consul.HealthWarning {
		t.Fatalf("aggregated status of passing, passing, warning: %s", checks.AggregatedStatus())
	}
	for _, check := range checks {
		if check.CheckID == "serfHealth" || check.ServiceName != "orders" {
			t.Fatalf("only the service's own checks: %+v", check)
		}
	}
	warning, _, err := d.client.Health().Checks("orders", &consul.QueryOptions{Filter: `Status == "warning"`})
	if err != nil || len(warning) != 1 || warning[0].ServiceID != "orders-3" {
		t.Fatalf("health/checks?filter: %v %+v", err, warning)
	}
	// Blocking: a TTL update wakes the query with a higher index.
	done := make(chan uint64, 1)
	go func() {
		_, after, err := d.client.Health().Checks("orders", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			done <- 0
			return
		}
		done <- after.LastIndex
	}()
	if err := d.client.Agent().PassTTL("orders-3:ttl", ""); err != nil {
		t.Fatalf("pass: %v", err)
	}
	select {
	case after := <-done:
		if after <= meta.LastIndex {
			t.Fatalf("health/checks woken with index %d (was %d)", after, meta.LastIndex)
		}
	case <-time.After(eventuallyWithin):
		t.Fatalf("blocking health/checks not woken by a TTL update")
	}
}
