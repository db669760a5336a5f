// Package otel continues the caller's OpenTelemetry trace through federation calls.
//
// The failure it prevents: a Go service traced with go.opentelemetry.io/otel loses its trace
// at every federation call unless it copies `traceparent` by hand, and its traces never show
// the call. [Client] wraps a *federation.Client: each call opens a `federation.call` span
// (kind client) in the caller's tracer as a child of the span in ctx, injects its context into
// the request's headers with the propagator (W3C `traceparent` and `tracestate` by default,
// the global one unless given), so the upstream service continues the same trace, and records
// the call's outcome with the attribute names of the Rust and Python spans (docs/metrics.md),
// then one `federation.attempt` child span per attempt, timed from the attempt's offset and
// duration.
//
//	traced := fedotel.New(client) // otel.GetTracerProvider(), otel.GetTextMapPropagator()
//	resp, err := traced.Get(ctx, "user", "/api/v1/users/42")
//
// It lives in its own module so the core module does not make every user depend on otel.
// A request that already carries a `traceparent` keeps it (and the span's parent is taken from
// it). The upstream's parent is an id the core derived from the call span (the same trace).
package otel

import (
	"context"
	"errors"
	"net/http"
	"time"

	federation "github.com/federation/federation-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span names (the same in Rust and Python).
const (
	// CallSpan is the span of one call.
	CallSpan = "federation.call"
	// AttemptSpan is the span of one attempt, a child of the call's.
	AttemptSpan = "federation.attempt"
)

// Client is a *federation.Client whose calls are traced.
type Client struct {
	*federation.Client
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// Option configures New.
type Option func(*Client)

// WithTracerProvider records spans with tp instead of the global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) { c.tracer = tp.Tracer("federation") }
}

// WithPropagator injects and extracts with p instead of the global propagator.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *Client) { c.propagator = p }
}

// New wraps client; by default spans go to otel.GetTracerProvider() and headers are written
// with otel.GetTextMapPropagator() (both read now: set them before calling New).
func New(client *federation.Client, opts ...Option) *Client {
	c := &Client{Client: client}
	for _, opt := range opts {
		opt(c)
	}
	if c.tracer == nil {
		c.tracer = otel.GetTracerProvider().Tracer("federation")
	}
	if c.propagator == nil {
		c.propagator = otel.GetTextMapPropagator()
	}
	return c
}

// Get calls GET path on service, traced.
func (c *Client) Get(ctx context.Context, service, path string) (*federation.Response, error) {
	return c.Do(ctx, service, &federation.Request{Method: "GET", Path: path})
}

// Post calls POST path on service with body and a Content-Type header (omitted when ""), traced.
func (c *Client) Post(ctx context.Context, service, path, contentType string, body []byte) (*federation.Response, error) {
	req := &federation.Request{Method: "POST", Path: path, Body: body}
	if contentType != "" {
		req.Header = http.Header{"Content-Type": {contentType}}
	}
	return c.Do(ctx, service, req)
}

// Do is federation.Client.Do inside a `federation.call` span; req is not modified (the trace
// headers go into a copy).
func (c *Client) Do(ctx context.Context, service string, req *federation.Request) (*federation.Response, error) {
	if req == nil {
		return c.Client.Do(ctx, service, req)
	}
	out := *req
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	explicit := out.Header.Get("traceparent") != ""
	parent := ctx
	if explicit {
		parent = c.propagator.Extract(ctx, propagation.HeaderCarrier(out.Header))
	}
	method := out.Method
	if method == "" {
		method = "GET"
	}
	path := out.Path
	if path == "" {
		path = "/"
	}
	start := time.Now()
	spanCtx, span := c.tracer.Start(parent, CallSpan, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("service", service), attribute.String("method", method),
			attribute.String("path", path)))
	defer span.End()
	if sc := span.SpanContext(); sc.IsValid() {
		span.SetAttributes(attribute.String("trace_id", sc.TraceID().String()))
	}
	if !explicit {
		c.propagator.Inject(spanCtx, propagation.HeaderCarrier(out.Header))
	}
	resp, err := c.Client.Do(ctx, service, &out)
	tried := record(span, resp, err)
	if span.IsRecording() {
		for i, a := range tried {
			c.attemptSpan(spanCtx, start, service, i+1, a)
		}
	}
	return resp, err
}

// attemptSpan records attempt number n of the call that started at callStart, timed from the
// attempt's offset and duration.
func (c *Client) attemptSpan(ctx context.Context, callStart time.Time, service string, n int, a federation.Attempt) {
	begun := callStart.Add(a.Offset)
	attrs := []attribute.KeyValue{
		attribute.String("service", service), attribute.String("cluster", a.Cluster),
		attribute.String("instance", a.Instance), attribute.Int("attempt", n),
		attribute.Float64("duration_ms", float64(a.Duration)/float64(time.Millisecond)),
	}
	if a.Status != 0 {
		attrs = append(attrs, attribute.Int("status", a.Status))
	}
	if a.Outcome != "success" {
		attrs = append(attrs, attribute.String("error_kind", a.Outcome))
	}
	_, span := c.tracer.Start(ctx, AttemptSpan, trace.WithTimestamp(begun), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(begun.Add(a.Duration)))
}

// record sets the call's outcome on span, as the core's span does, and returns its attempts.
func record(span trace.Span, resp *federation.Response, err error) []federation.Attempt {
	var tried []federation.Attempt
	if resp != nil {
		tried = resp.Tried
		span.SetAttributes(attribute.String("outcome", "success"), attribute.String("cache", string(resp.Cache)))
	} else if err != nil {
		outcome := "internal"
		var fe *federation.Error
		if errors.As(err, &fe) {
			tried = fe.Tried
			outcome = fe.Kind.String()
		}
		span.SetAttributes(attribute.String("outcome", outcome))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(attribute.Int("attempts", len(tried)))
	if len(tried) > 0 { // as in Rust: no cluster for a cache hit or a call refused before routing
		span.SetAttributes(attribute.String("cluster", tried[len(tried)-1].Cluster))
	}
	return tried
}
