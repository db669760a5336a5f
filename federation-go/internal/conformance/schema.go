// Package conformance is the Go runner of the cross-language conformance scenarios
// (tests/scenarios/*.yaml): federation-conformance/src/{schema,runner,expect}.rs in Go.
//
// A scenario must mean the same in Rust, Python and Go, or "passes in all three" proves
// nothing. So files are read strictly (unknown keys are errors), the step order and counter
// reads follow runner.rs, and the arithmetic follows expect.rs line for line. A language only
// supplies the two seams: World (the testkit) and Driver (the SDK). See docs/conformance.md.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scenario is one scenario file.
type Scenario struct {
	Name         string         `yaml:"name"`
	Proves       string         `yaml:"proves"`
	KnownFailure *string        `yaml:"known_failure"`
	Topology     map[string]any `yaml:"topology"`
	Client       map[string]any `yaml:"client"`
	RawSteps     []yaml.Node    `yaml:"steps"`
	Steps        []Step         `yaml:"-"`
}

// Step is one step: Kind names it, the matching field holds its value.
type Step struct {
	Kind         string
	Target       string // kill, revive
	Behavior     map[string]any
	HealthStatus *HealthStatusSpec
	Consul       map[string]any
	SleepMs      uint64
	WaitPassing  *WaitPassingSpec
	Calls        *CallsStep
	Health       *HealthExpect
}

// HealthStatusSpec is a `health_status` step.
type HealthStatusSpec struct {
	Target string `yaml:"target"`
	Status int    `yaml:"status"`
}

// WaitPassingSpec is a `wait_passing` step.
type WaitPassingSpec struct {
	Target    string `yaml:"target"`
	Count     int    `yaml:"count"`
	TimeoutMs uint64 `yaml:"timeout_ms"`
}

// CallsStep is a `calls` step.
type CallsStep struct {
	Name        *string     `yaml:"name"`
	Request     CallSpec    `yaml:"request"`
	Count       int         `yaml:"count"`
	Concurrency int         `yaml:"concurrency"`
	IntervalMs  uint64      `yaml:"interval_ms"`
	Reloads     *Reloads    `yaml:"reloads"`
	Expect      CallsExpect `yaml:"expect"`
}

// Reloads is a calls step's `reloads`: while the calls run, every EveryMs the client is
// reloaded with the next of Clients (cycling), each a `client` block plus the topology's
// clusters. A rejected reload, or none before the calls end, fails the step.
type Reloads struct {
	EveryMs uint64           `yaml:"every_ms"`
	Clients []map[string]any `yaml:"clients"`
}

// CallSpec is the request every call of a step sends.
type CallSpec struct {
	Service          string            `yaml:"service"`
	Method           string            `yaml:"method"`
	Path             string            `yaml:"path"`
	Idempotent       *bool             `yaml:"idempotent"`
	TimeoutMs        uint64            `yaml:"timeout_ms"`
	AttemptTimeoutMs uint64            `yaml:"attempt_timeout_ms"`
	Cluster          string            `yaml:"cluster"`
	Tags             []string          `yaml:"tags"`
	Body             *string           `yaml:"body"`
	Headers          map[string]string `yaml:"headers"`
}

// Bound is an inclusive bound; either side may be absent.
type Bound struct {
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
}

// Holds says whether v lies within the bound.
func (b Bound) Holds(v float64) bool {
	return (b.Min == nil || v >= *b.Min) && (b.Max == nil || v <= *b.Max)
}

// CallsExpect is what must hold over a calls step.
type CallsExpect struct {
	SuccessShare     *Bound           `yaml:"success_share"`
	ServedBy         map[string]Bound `yaml:"served_by"`
	MaxAttempts      *int             `yaml:"max_attempts"`
	UpstreamPerCall  *Bound           `yaml:"upstream_per_call"`
	InstanceRequests map[string]Bound `yaml:"instance_requests"`
	InstanceAttempts map[string]Bound `yaml:"instance_attempts"`
	MaxCallMs        *uint64          `yaml:"max_call_ms"`
	ErrorKinds       []string         `yaml:"error_kinds"`
	Statuses         []int            `yaml:"statuses"`
	Cache            map[string]Bound `yaml:"cache"`
}

// HealthExpect is a `health` step.
type HealthExpect struct {
	Service   string  `yaml:"service"`
	Cluster   *string `yaml:"cluster"`
	Selected  *string `yaml:"selected"`
	Ejected   *Bound  `yaml:"ejected"`
	Available *Bound  `yaml:"available"`
	Stale     *bool   `yaml:"stale"`
	WithinMs  uint64  `yaml:"within_ms"`
}

func strict(node *yaml.Node, out any) error {
	text, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	return dec.Decode(out)
}

func parseStep(node *yaml.Node) (Step, error) {
	if node.Kind != yaml.MappingNode || len(node.Content) != 2 {
		return Step{}, fmt.Errorf("line %d: a step is a single-key map", node.Line)
	}
	kind, value := node.Content[0].Value, node.Content[1]
	s := Step{Kind: kind}
	var err error
	switch kind {
	case "kill", "revive":
		err = strict(value, &s.Target)
	case "behavior":
		err = strict(value, &s.Behavior)
	case "health_status":
		s.HealthStatus = &HealthStatusSpec{}
		err = strict(value, s.HealthStatus)
	case "consul":
		err = strict(value, &s.Consul)
	case "sleep_ms":
		err = strict(value, &s.SleepMs)
	case "wait_passing":
		s.WaitPassing = &WaitPassingSpec{TimeoutMs: 5000}
		err = strict(value, s.WaitPassing)
	case "calls":
		s.Calls = &CallsStep{Count: 1, Concurrency: 1, Request: CallSpec{Method: "GET", Path: "/work"}}
		err = strict(value, s.Calls)
	case "health":
		s.Health = &HealthExpect{WithinMs: 3000}
		err = strict(value, s.Health)
	default:
		err = fmt.Errorf("unknown step `%s`", kind)
	}
	if err != nil {
		return Step{}, fmt.Errorf("line %d: %s: %w", node.Line, kind, err)
	}
	return s, nil
}

// Load reads and checks one scenario file.
func Load(path string) (*Scenario, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range s.RawSteps {
		step, err := parseStep(&s.RawSteps[i])
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", path, i+1, err)
		}
		s.Steps = append(s.Steps, step)
	}
	if s.Client == nil {
		s.Client = map[string]any{}
	}
	return &s, nil
}

// Paths lists every scenario file of dir, sorted.
func Paths(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// TopologyJSON is the topology block as JSON (for the World).
func (s *Scenario) TopologyJSON() ([]byte, error) {
	return json.Marshal(s.Topology)
}
