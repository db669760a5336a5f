package conformance

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// InstanceRef is one instance of the topology.
type InstanceRef struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Index   int    `json:"index"`
	ID      string `json:"id"`
}

// Attempt is one attempt a call reported: (cluster, instance id).
type Attempt struct{ Cluster, Instance string }

// CallRecord is what one call did.
type CallRecord struct {
	Status    int // 0: no response
	ErrorKind string
	Error     string
	Cluster   string
	Instance  string
	Attempts  []Attempt
	Cache     string
	Elapsed   time.Duration
}

// Succeeded is a 2xx response.
func (r *CallRecord) Succeeded() bool { return r.Status >= 200 && r.Status < 300 }

// Delta is the requests one instance received during a step.
type Delta struct {
	Ref InstanceRef
	N   uint64
}

// Resolve returns every instance matching cluster[/service[/index]]; nothing matched is an error.
func Resolve(reference string, all []InstanceRef) ([]InstanceRef, error) {
	parts := strings.Split(reference, "/")
	if len(parts) > 3 {
		return nil, fmt.Errorf("`%s`: expected cluster[/service[/index]]", reference)
	}
	index := -1
	if len(parts) == 3 {
		n, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("`%s`: instance index `%s` is not a number", reference, parts[2])
		}
		index = int(n)
	}
	var out []InstanceRef
	for _, i := range all {
		if i.Cluster == parts[0] && (len(parts) < 2 || i.Service == parts[1]) && (index < 0 || i.Index == index) {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		known := make([]string, 0, len(all))
		for _, i := range all {
			known = append(known, fmt.Sprintf("%s/%s/%d", i.Cluster, i.Service, i.Index))
		}
		return nil, fmt.Errorf("`%s` matches no instance; instances: %s", reference, strings.Join(known, ", "))
	}
	return out, nil
}

// Summary is the figures of one calls step.
type Summary struct {
	Calls, Succeeded, Attempts int
	Upstream                   uint64
	SlowestMs                  int64
}

func (s Summary) String() string {
	return fmt.Sprintf("%d calls, %d ok, %d attempts, %d upstream requests, slowest %d ms",
		s.Calls, s.Succeeded, s.Attempts, s.Upstream, s.SlowestMs)
}

// Summarize computes the figures of a step.
func Summarize(records []CallRecord, deltas []Delta) Summary {
	var s Summary
	s.Calls = len(records)
	for i := range records {
		if records[i].Succeeded() {
			s.Succeeded++
		}
		s.Attempts += len(records[i].Attempts)
		if ms := records[i].Elapsed.Milliseconds(); ms > s.SlowestMs {
			s.SlowestMs = ms
		}
	}
	for _, d := range deltas {
		s.Upstream += d.N
	}
	return s
}

func share(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

func show(b Bound) string {
	switch {
	case b.Min != nil && b.Max != nil:
		return fmt.Sprintf("between %v and %v", *b.Min, *b.Max)
	case b.Min != nil:
		return fmt.Sprintf(">= %v", *b.Min)
	case b.Max != nil:
		return fmt.Sprintf("<= %v", *b.Max)
	}
	return "anything"
}

func check(failures *[]string, what string, b Bound, observed float64) {
	if !b.Holds(observed) {
		*failures = append(*failures, fmt.Sprintf("%s: expected %s, observed %.3f", what, show(b), observed))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func outcomes(records []CallRecord) map[string]int {
	out := map[string]int{}
	for _, r := range records {
		label := strconv.Itoa(r.Status)
		if r.Status == 0 {
			msg := r.Error
			if len(msg) > 160 {
				msg = msg[:160]
			}
			label = r.ErrorKind + ": " + msg
		}
		out[label]++
	}
	return out
}

// JudgeCalls lists every violated expectation of a calls step.
func JudgeCalls(e *CallsExpect, records []CallRecord, deltas []Delta, all []InstanceRef) []string {
	var failures []string
	s := Summarize(records, deltas)
	if e.SuccessShare != nil {
		observed := share(s.Succeeded, s.Calls)
		if !e.SuccessShare.Holds(observed) {
			failures = append(failures, fmt.Sprintf("success share: expected %s, observed %.3f; outcomes: %v",
				show(*e.SuccessShare), observed, outcomes(records)))
		}
	}
	for _, cluster := range sortedKeys(e.ServedBy) {
		served := 0
		for i := range records {
			if records[i].Succeeded() && records[i].Cluster == cluster {
				served++
			}
		}
		check(&failures, "share of successful calls served by "+cluster, e.ServedBy[cluster], share(served, s.Succeeded))
	}
	if e.MaxAttempts != nil && len(records) > 0 {
		worst := 0
		for i := range records {
			if len(records[i].Attempts) > len(records[worst].Attempts) {
				worst = i
			}
		}
		if n := len(records[worst].Attempts); n > *e.MaxAttempts {
			failures = append(failures, fmt.Sprintf("attempts per call: expected <= %d, observed %d (%v)",
				*e.MaxAttempts, n, records[worst].Attempts))
		}
	}
	if e.UpstreamPerCall != nil {
		check(&failures, "upstream requests per call", *e.UpstreamPerCall, float64(s.Upstream)/float64(max(s.Calls, 1)))
	}
	for _, ref := range sortedKeys(e.InstanceRequests) {
		selected, err := Resolve(ref, all)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		var n uint64
		for _, d := range deltas {
			for _, sel := range selected {
				if d.Ref == sel {
					n += d.N
				}
			}
		}
		check(&failures, "requests received by "+ref, e.InstanceRequests[ref], float64(n))
	}
	for _, ref := range sortedKeys(e.InstanceAttempts) {
		selected, err := Resolve(ref, all)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		n := 0
		for i := range records {
			for _, a := range records[i].Attempts {
				for _, sel := range selected {
					if sel.Cluster == a.Cluster && sel.ID == a.Instance {
						n++
					}
				}
			}
		}
		check(&failures, "attempts sent to "+ref, e.InstanceAttempts[ref], float64(n))
	}
	if e.MaxCallMs != nil && s.SlowestMs > int64(*e.MaxCallMs) {
		failures = append(failures, fmt.Sprintf("slowest call: expected <= %d ms, observed %d ms", *e.MaxCallMs, s.SlowestMs))
	}
	if e.ErrorKinds != nil {
		wrong := map[string]int{}
		for _, r := range records {
			if r.Status == 0 && !contains(e.ErrorKinds, r.ErrorKind) {
				wrong[fmt.Sprintf("%s (%s)", r.ErrorKind, r.Error)]++
			}
		}
		if len(wrong) > 0 {
			failures = append(failures, fmt.Sprintf("error kinds: expected only %v, observed %v", e.ErrorKinds, wrong))
		}
	}
	if e.Statuses != nil {
		wrong := map[string]int{}
		for _, r := range records {
			if r.Status == 0 {
				wrong[fmt.Sprintf("error %s: %s", r.ErrorKind, r.Error)]++
			} else if !contains(e.Statuses, r.Status) {
				wrong[strconv.Itoa(r.Status)]++
			}
		}
		if len(wrong) > 0 {
			failures = append(failures, fmt.Sprintf("statuses: expected only %v, observed %v", e.Statuses, wrong))
		}
	}
	for _, status := range sortedKeys(e.Cache) {
		n := 0
		for i := range records {
			if records[i].Cache == status {
				n++
			}
		}
		check(&failures, "calls with cache "+status, e.Cache[status], float64(n))
	}
	return failures
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

type healthJSON struct {
	Services []struct {
		Service  string  `json:"service"`
		Selected *string `json:"selected"`
		Clusters []struct {
			Cluster   string   `json:"cluster"`
			Ejected   *float64 `json:"ejected"`
			Available *float64 `json:"available"`
			Stale     *bool    `json:"stale"`
		} `json:"clusters"`
	} `json:"services"`
}

func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// JudgeHealth lists every violated expectation of a health step on the SDK's health JSON.
func JudgeHealth(e *HealthExpect, snapshot string) []string {
	var h healthJSON
	_ = json.Unmarshal([]byte(snapshot), &h)
	var failures []string
	idx := -1
	for i := range h.Services {
		if h.Services[i].Service == e.Service {
			idx = i
			break
		}
	}
	if idx < 0 {
		return []string{fmt.Sprintf("health: no service `%s` in the snapshot", e.Service)}
	}
	svc := h.Services[idx]
	if e.Selected != nil {
		observed := "<none>"
		if svc.Selected != nil {
			observed = *svc.Selected
		}
		if observed != *e.Selected {
			failures = append(failures, fmt.Sprintf("health %s: selected cluster expected %s, observed %s", e.Service, *e.Selected, observed))
		}
	}
	if e.Cluster == nil {
		return failures
	}
	for _, c := range svc.Clusters {
		if c.Cluster != *e.Cluster {
			continue
		}
		what := fmt.Sprintf("health %s/%s", e.Service, *e.Cluster)
		if e.Ejected != nil {
			check(&failures, what+" ejected", *e.Ejected, orNaN(c.Ejected))
		}
		if e.Available != nil {
			check(&failures, what+" available", *e.Available, orNaN(c.Available))
		}
		if e.Stale != nil && (c.Stale == nil || *c.Stale != *e.Stale) {
			observed := "None"
			if c.Stale != nil {
				observed = fmt.Sprintf("Some(%v)", *c.Stale)
			}
			failures = append(failures, fmt.Sprintf("%s stale: expected %v, observed %s", what, *e.Stale, observed))
		}
		return failures
	}
	return append(failures, fmt.Sprintf("health %s: no cluster `%s`", e.Service, *e.Cluster))
}
