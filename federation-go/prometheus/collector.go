// Package prometheus exposes a federation client's metrics through client_golang.
//
// The failure it prevents: a Go service that already serves `/metrics` with client_golang would
// get the client's series only as a separate OpenMetrics string to splice in by hand. A
// [Collector] registered with the service's registry yields them as real counters, gauges and
// histograms (buckets included) on every scrape:
//
//	prometheus.MustRegister(fedprom.NewCollector(client))
//
// It lives in its own module so the core module does not make every user depend on
// client_golang. Names and labels are the core's (docs/metrics.md); one client per registry
// (two clients' identical series would collide: give each its own registry).
package prometheus

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Source is anything with the SDK's Metrics(): a *federation.Client.
type Source interface {
	Metrics() (string, error)
}

// Collector is a prometheus.Collector for one federation client. It is "unchecked" (its
// Describe sends nothing): the families a client has depend on its configuration and grow
// as series appear.
type Collector struct {
	source Source
}

// NewCollector returns a collector reading source's metrics at each scrape.
func NewCollector(source Source) *Collector { return &Collector{source: source} }

// Describe sends nothing: an unchecked collector.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

var failed = prometheus.NewDesc("federation_collector_error", "The federation metrics could not be read.", nil, nil)

// Collect reads the client's metrics now (the state gauges are refreshed per read) and sends
// each series; a failure is sent as an invalid metric, which fails the scrape visibly.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	text, err := c.source.Metrics()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(failed, err)
		return
	}
	families, err := parse(text)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(failed, err)
		return
	}
	for _, f := range families {
		if err := send(ch, f); err != nil {
			ch <- prometheus.NewInvalidMetric(failed, fmt.Errorf("family %s: %w", f.name, err))
		}
	}
}

func send(ch chan<- prometheus.Metric, f *family) error {
	switch f.kind {
	case "counter":
		return sendSimple(ch, f, prometheus.CounterValue)
	case "gauge":
		return sendSimple(ch, f, prometheus.GaugeValue)
	case "histogram":
		return sendHistograms(ch, f)
	default:
		return fmt.Errorf("unsupported type %q", f.kind)
	}
}

func names(labels []label) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = l.name
	}
	return out
}

func values(labels []label) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = l.value
	}
	return out
}

func sendSimple(ch chan<- prometheus.Metric, f *family, kind prometheus.ValueType) error {
	for _, s := range f.samples {
		if kind == prometheus.CounterValue && s.name != f.name+"_total" && s.name != f.name {
			continue // `_created`
		}
		desc := prometheus.NewDesc(s.name, f.help, names(s.labels), nil)
		m, err := prometheus.NewConstMetric(desc, kind, s.value, values(s.labels)...)
		if err != nil {
			return err
		}
		ch <- m
	}
	return nil
}

// histogram collects the `_bucket`, `_sum` and `_count` samples of one label set.
type histogram struct {
	labels  []label
	buckets map[float64]uint64
	sum     float64
	count   uint64
}

func sendHistograms(ch chan<- prometheus.Metric, f *family) error {
	var order []string
	byKey := map[string]*histogram{}
	for _, s := range f.samples {
		labels, le := withoutLE(s.labels)
		key := fmt.Sprint(labels)
		h := byKey[key]
		if h == nil {
			h = &histogram{labels: labels, buckets: map[float64]uint64{}}
			byKey[key] = h
			order = append(order, key)
		}
		switch s.name {
		case f.name + "_bucket":
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				return fmt.Errorf("bucket bound %q: %w", le, err)
			}
			if !math.IsInf(bound, +1) { // implicit: the count
				h.buckets[bound] = uint64(s.value)
			}
		case f.name + "_sum":
			h.sum = s.value
		case f.name + "_count":
			h.count = uint64(s.value)
		}
	}
	sort.Strings(order)
	for _, key := range order {
		h := byKey[key]
		desc := prometheus.NewDesc(f.name, f.help, names(h.labels), nil)
		m, err := prometheus.NewConstHistogram(desc, h.count, h.sum, h.buckets, values(h.labels)...)
		if err != nil {
			return err
		}
		ch <- m
	}
	return nil
}

// withoutLE splits the `le` label (a bucket's bound) from the others.
func withoutLE(labels []label) ([]label, string) {
	out := make([]label, 0, len(labels))
	le := ""
	for _, l := range labels {
		if l.name == "le" {
			le = l.value
			continue
		}
		out = append(out, l)
	}
	return out, le
}
