package conformance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// World is the testkit seam (driver.rs `World`).
type World interface {
	Instances() []InstanceRef
	ClusterSource(cluster string) (map[string]any, error)
	Kill(i InstanceRef) error
	Revive(i InstanceRef) error
	SetBehavior(i InstanceRef, spec map[string]any) error
	SetHealthStatus(i InstanceRef, status int) error
	ConsulFault(spec map[string]any) error
	WaitPassing(cluster, service string, count int, timeout time.Duration) error
	// Requests is how many requests the instance has received; an error fails the step (a
	// count read as 0 would let every upper bound pass unchecked).
	Requests(i InstanceRef) (uint64, error)
}

// Driver is the SDK seam (driver.rs `Driver`).
type Driver interface {
	Call(ctx context.Context, spec *CallSpec) CallRecord
	// Health is the client's health snapshot as JSON.
	Health() string
	// Reload replaces the client's configuration with config (a whole generated one).
	Reload(config map[string]any) error
}

// StepReport is the outcome of one step.
type StepReport struct {
	Label    string
	Failures []string
	Summary  string
}

// Report is the outcome of a scenario.
type Report struct {
	Name         string
	KnownFailure *string
	Steps        []StepReport
}

// Passed is true when every expectation held.
func (r *Report) Passed() bool {
	for _, s := range r.Steps {
		if len(s.Failures) > 0 {
			return false
		}
	}
	return true
}

// Render is the human-readable report (the same shape as the Rust and Python runners').
func (r *Report) Render() string {
	verdict := "FAIL"
	switch {
	case r.Passed() && r.KnownFailure != nil:
		verdict = "PASS (marked known_failure: remove the mark)"
	case r.Passed():
		verdict = "PASS"
	case r.KnownFailure != nil:
		verdict = "KNOWN FAILURE"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %s\n", r.Name, verdict)
	if r.KnownFailure != nil {
		fmt.Fprintf(&b, "  known failure: %s\n", *r.KnownFailure)
	}
	for _, s := range r.Steps {
		b.WriteString("  " + s.Label)
		if s.Summary != "" {
			b.WriteString(": " + s.Summary)
		}
		b.WriteString("\n")
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "    FAILED %s\n", f)
		}
	}
	return b.String()
}

// ClientConfig is the scenario's client block plus `clusters` built from the topology.
func ClientConfig(s *Scenario, w World) (map[string]any, error) {
	return configWith(s.Client, s, w)
}

// configWith is the configuration of client (a `client` block) over the topology of s.
func configWith(client map[string]any, s *Scenario, w World) (map[string]any, error) {
	clusters := map[string]any{}
	list, _ := s.Topology["clusters"].([]any)
	for _, raw := range list {
		c, _ := raw.(map[string]any)
		name, _ := c["name"].(string)
		entry, err := w.ClusterSource(name)
		if err != nil {
			return nil, err
		}
		if lb, ok := c["load_balancing"].(string); ok {
			entry["load_balancing"] = lb
		}
		clusters[name] = entry
	}
	config := map[string]any{}
	for k, v := range client {
		config[k] = v
	}
	config["clusters"] = clusters
	return config, nil
}

func describe(s *Step) string {
	switch s.Kind {
	case "kill", "revive":
		return s.Target
	case "behavior":
		return fmt.Sprint(s.Behavior["target"])
	case "health_status":
		return fmt.Sprintf("%s %d", s.HealthStatus.Target, s.HealthStatus.Status)
	case "consul":
		return fmt.Sprintf("%v %v", s.Consul["cluster"], s.Consul["fault"])
	case "sleep_ms":
		return fmt.Sprintf("%d ms", s.SleepMs)
	case "wait_passing":
		return fmt.Sprintf("%s = %d", s.WaitPassing.Target, s.WaitPassing.Count)
	case "calls":
		if s.Calls.Name != nil {
			return *s.Calls.Name
		}
		return ""
	}
	return s.Health.Service
}

// Run executes every step of s in order; it stops at a step that could not be carried out.
func Run(ctx context.Context, s *Scenario, w World, d Driver) *Report {
	report := &Report{Name: s.Name, KnownFailure: s.KnownFailure}
	all := w.Instances()
	for n := range s.Steps {
		step := &s.Steps[n]
		label := fmt.Sprintf("#%d %s", n+1, step.Kind)
		if name := describe(step); name != "" {
			label += " " + name
		}
		sr, err := execute(ctx, s, step, w, d, all)
		sr.Label = label
		if err != nil {
			sr.Failures = []string{"step could not run: " + err.Error()}
		}
		report.Steps = append(report.Steps, sr)
		if err != nil {
			break
		}
	}
	return report
}

func forEach(reference string, all []InstanceRef, f func(InstanceRef) error) error {
	selected, err := Resolve(reference, all)
	if err != nil {
		return err
	}
	for _, i := range selected {
		if err := f(i); err != nil {
			return err
		}
	}
	return nil
}

func execute(ctx context.Context, sc *Scenario, s *Step, w World, d Driver, all []InstanceRef) (StepReport, error) {
	switch s.Kind {
	case "kill":
		return StepReport{}, forEach(s.Target, all, w.Kill)
	case "revive":
		return StepReport{}, forEach(s.Target, all, w.Revive)
	case "behavior":
		target, _ := s.Behavior["target"].(string)
		return StepReport{}, forEach(target, all, func(i InstanceRef) error { return w.SetBehavior(i, s.Behavior) })
	case "health_status":
		return StepReport{}, forEach(s.HealthStatus.Target, all, func(i InstanceRef) error {
			return w.SetHealthStatus(i, s.HealthStatus.Status)
		})
	case "consul":
		return StepReport{}, w.ConsulFault(s.Consul)
	case "sleep_ms":
		time.Sleep(time.Duration(s.SleepMs) * time.Millisecond)
	case "wait_passing":
		cluster, service, ok := strings.Cut(s.WaitPassing.Target, "/")
		if !ok {
			return StepReport{}, fmt.Errorf("`%s`: expected cluster/service", s.WaitPassing.Target)
		}
		return StepReport{}, w.WaitPassing(cluster, service, s.WaitPassing.Count,
			time.Duration(s.WaitPassing.TimeoutMs)*time.Millisecond)
	case "calls":
		var reloads []map[string]any
		if r := s.Calls.Reloads; r != nil {
			if len(r.Clients) == 0 {
				return StepReport{}, fmt.Errorf("`reloads.clients` is empty")
			}
			for _, client := range r.Clients {
				config, err := configWith(client, sc, w)
				if err != nil {
					return StepReport{}, err
				}
				reloads = append(reloads, config)
			}
		}
		return runCalls(ctx, s.Calls, reloads, w, d, all), nil
	case "health":
		until := time.Now().Add(time.Duration(s.Health.WithinMs) * time.Millisecond)
		for {
			failures := JudgeHealth(s.Health, d.Health())
			if len(failures) == 0 || !time.Now().Before(until) {
				return StepReport{Failures: failures}, nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return StepReport{}, nil
}

func runCalls(ctx context.Context, step *CallsStep, reloads []map[string]any, w World, d Driver, all []InstanceRef) StepReport {
	before, err := requestCounts(w, all)
	if err != nil {
		return StepReport{Failures: []string{"request counts before the calls: " + err.Error()}}
	}
	workers := max(step.Concurrency, 1)
	results := make([][]CallRecord, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		n := step.Count / workers
		if wk < step.Count%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				results[wk] = append(results[wk], d.Call(ctx, &step.Request))
				if step.IntervalMs > 0 {
					time.Sleep(time.Duration(step.IntervalMs) * time.Millisecond)
				}
			}
		}()
	}
	reloadFailures := reloadWhile(&wg, step, reloads, d)
	var records []CallRecord
	for _, r := range results {
		records = append(records, r...)
	}
	after, err := requestCounts(w, all)
	if err != nil {
		return StepReport{Failures: []string{"request counts after the calls: " + err.Error()}}
	}
	deltas := make([]Delta, len(all))
	for i, ref := range all {
		deltas[i] = Delta{Ref: ref, N: after[i] - min(after[i], before[i])}
	}
	return StepReport{
		Failures: append(JudgeCalls(&step.Expect, records, deltas, all), reloadFailures...),
		Summary:  Summarize(records, deltas).String(),
	}
}

// requestCounts reads every instance's request count, or the first read that failed.
func requestCounts(w World, all []InstanceRef) ([]uint64, error) {
	out := make([]uint64, len(all))
	for i, ref := range all {
		n, err := w.Requests(ref)
		if err != nil {
			return nil, fmt.Errorf("%s/%s/%d: %w", ref.Cluster, ref.Service, ref.Index, err)
		}
		out[i] = n
	}
	return out, nil
}

// reloadWhile waits for the calls of wg while reloading the client with reloads in turn every
// step.Reloads.EveryMs; returns the reload failures (a rejected reload, or none made).
func reloadWhile(wg *sync.WaitGroup, step *CallsStep, reloads []map[string]any, d Driver) []string {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	if len(reloads) == 0 {
		<-done
		return nil
	}
	var failures []string
	every := time.Duration(step.Reloads.EveryMs) * time.Millisecond
	for made := 0; ; made++ {
		select {
		case <-done:
			if made == 0 {
				failures = append(failures, "reloads: the calls ended before the first reload")
			}
			return failures
		case <-time.After(every):
			if err := d.Reload(reloads[made%len(reloads)]); err != nil {
				failures = append(failures, fmt.Sprintf("reload %d: %v", made+1, err))
			}
		}
	}
}
