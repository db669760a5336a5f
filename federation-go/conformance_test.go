package federation_test

// Every scenario of tests/scenarios/ through the Go module's public API against a fresh
// scenario world (federationtest.World: the Rust runner's testkit world over the C ABI). The
// step order and the expectation arithmetic live in internal/conformance, a literal port of
// federation-conformance/src/{runner,expect}.rs. A failing scenario fails its sub-test unless it
// is marked known_failure; every report is logged (go test -v shows them).
// FEDERATION_SCENARIO=<name> runs one scenario; a name that matches no file fails the test. The
// number of scenarios run is checked against the files in the directory (each must be one).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
	"github.com/federation/federation-go/internal/conformance"
)

// worldSeam is conformance.World over federationtest.World.
type worldSeam struct {
	w         *federationtest.World
	instances []conformance.InstanceRef
}

func (s *worldSeam) control(command map[string]any) (json.RawMessage, error) {
	return s.w.Control(command)
}

func at(op string, i conformance.InstanceRef) map[string]any {
	return map[string]any{"op": op, "cluster": i.Cluster, "service": i.Service, "index": i.Index}
}

func (s *worldSeam) Instances() []conformance.InstanceRef { return s.instances }

func (s *worldSeam) ClusterSource(cluster string) (map[string]any, error) {
	raw, err := s.control(map[string]any{"op": "cluster_source", "cluster": cluster})
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

func (s *worldSeam) Kill(i conformance.InstanceRef) error {
	_, err := s.control(at("kill", i))
	return err
}

func (s *worldSeam) Revive(i conformance.InstanceRef) error {
	_, err := s.control(at("revive", i))
	return err
}

func (s *worldSeam) SetBehavior(i conformance.InstanceRef, spec map[string]any) error {
	c := at("behavior", i)
	c["spec"] = spec
	_, err := s.control(c)
	return err
}

func (s *worldSeam) SetHealthStatus(i conformance.InstanceRef, status int) error {
	c := at("health_status", i)
	c["status"] = status
	_, err := s.control(c)
	return err
}

func (s *worldSeam) ConsulFault(spec map[string]any) error {
	_, err := s.control(map[string]any{"op": "consul", "spec": spec})
	return err
}

func (s *worldSeam) WaitPassing(cluster, service string, count int, timeout time.Duration) error {
	_, err := s.control(map[string]any{
		"op": "wait_passing", "cluster": cluster, "service": service, "count": count,
		"timeout_ms": timeout.Milliseconds(),
	})
	return err
}

func (s *worldSeam) Requests(i conformance.InstanceRef) (uint64, error) {
	raw, err := s.control(at("requests", i))
	if err != nil {
		return 0, err
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("request count %s: %w", raw, err)
	}
	return n, nil
}

// driverSeam is conformance.Driver over federation.Client.
type driverSeam struct{ client *federation.Client }

func (d *driverSeam) Health() string {
	h, err := d.client.Health()
	if err != nil {
		return "{}"
	}
	return h.JSON
}

func (d *driverSeam) Reload(config map[string]any) error {
	text, err := json.Marshal(config)
	if err != nil {
		return err
	}
	return d.client.Reload(string(text), federation.JSON)
}

func attempts(tried []federation.Attempt) []conformance.Attempt {
	out := make([]conformance.Attempt, 0, len(tried))
	for _, a := range tried {
		out = append(out, conformance.Attempt{Cluster: a.Cluster, Instance: a.Instance})
	}
	return out
}

func (d *driverSeam) Call(ctx context.Context, spec *conformance.CallSpec) conformance.CallRecord {
	started := time.Now()
	req := &federation.Request{
		Method:         spec.Method,
		Path:           spec.Path,
		Timeout:        time.Duration(spec.TimeoutMs) * time.Millisecond,
		AttemptTimeout: time.Duration(spec.AttemptTimeoutMs) * time.Millisecond,
		Idempotent:     spec.Idempotent,
		Cluster:        spec.Cluster,
		Tags:           spec.Tags,
	}
	if len(spec.Headers) > 0 {
		req.Header = http.Header{}
		for name, value := range spec.Headers {
			req.Header[name] = []string{value} // as written: a bad name must reach the SDK
		}
	}
	if spec.Body != nil {
		req.Body = []byte(*spec.Body)
	}
	resp, err := d.client.Do(ctx, spec.Service, req)
	elapsed := time.Since(started)
	if err != nil {
		var fe *federation.Error
		if !errors.As(err, &fe) {
			return conformance.CallRecord{ErrorKind: "internal", Error: err.Error(), Elapsed: elapsed}
		}
		return conformance.CallRecord{
			ErrorKind: fe.Kind.String(), Error: fe.Message, Attempts: attempts(fe.Tried), Elapsed: elapsed,
		}
	}
	return conformance.CallRecord{
		Status: resp.Status, Cluster: resp.Cluster, Instance: resp.Instance,
		Attempts: attempts(resp.Tried), Cache: string(resp.Cache), Elapsed: elapsed,
	}
}

func runScenario(t *testing.T, s *conformance.Scenario) *conformance.Report {
	topology, err := s.TopologyJSON()
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	w, err := federationtest.StartWorld(topology)
	if err != nil {
		t.Fatalf("starting the world: %v", err)
	}
	defer w.Close()
	seam := &worldSeam{w: w}
	raw, err := w.Control(map[string]any{"op": "instances"})
	if err == nil {
		err = json.Unmarshal(raw, &seam.instances)
	}
	if err != nil {
		t.Fatalf("instances: %v", err)
	}
	config, err := conformance.ClientConfig(s, seam)
	if err != nil {
		t.Fatalf("client configuration: %v", err)
	}
	text, err := json.Marshal(config)
	if err != nil {
		t.Fatalf("client configuration: %v", err)
	}
	client, err := federation.New(string(text), federation.JSON)
	if err != nil {
		t.Fatalf("scenario configuration rejected: %v\n%s", err, text)
	}
	defer client.Close()
	return conformance.Run(context.Background(), s, seam, &driverSeam{client: client})
}

func TestConformanceScenarios(t *testing.T) {
	dir := filepath.Join("..", "tests", "scenarios")
	paths, err := conformance.Paths(dir)
	if err != nil {
		t.Fatalf("scenario dir: %v", err)
	}
	onDisk := filesIn(t, dir)
	if len(paths) != onDisk {
		t.Fatalf("%d scenario paths but %d files in %s", len(paths), onDisk, dir)
	}
	only := os.Getenv("FEDERATION_SCENARIO")
	var names []string
	ran := 0
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		names = append(names, name)
		if only != "" && only != name {
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			s, err := conformance.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != name {
				t.Fatalf("%s: name %q must equal the file stem", path, s.Name)
			}
			started := time.Now()
			report := runScenario(t, s)
			t.Log(report.Render() + fmt.Sprintf("  (%.1f s)", time.Since(started).Seconds()))
			if !report.Passed() && report.KnownFailure == nil {
				t.Error(report.Render())
			}
		})
	}
	switch {
	case only != "" && ran != 1:
		t.Fatalf("FEDERATION_SCENARIO=%s names no scenario; known: %v", only, names)
	case only == "" && ran != onDisk:
		t.Fatalf("ran %d scenarios, %d files on disk", ran, onDisk)
	}
}

// filesIn counts the regular files in dir.
func filesIn(t *testing.T, dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("scenario dir: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.Type().IsRegular() {
			n++
		}
	}
	return n
}
