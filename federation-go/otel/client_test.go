package otel_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
	fedotel "github.com/federation/federation-go/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func start(t *testing.T) (*federationtest.Sandbox, *federation.Client) {
	return federationtest.StartWithClient(t, "user")
}

func tracer(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exporter, tp
}

func attrs(s tracetest.SpanStub) map[string]attribute.Value {
	out := map[string]attribute.Value{}
	for _, kv := range s.Attributes {
		out[string(kv.Key)] = kv.Value
	}
	return out
}

func only(t *testing.T, exporter *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range exporter.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %s, want 1", len(found), name)
	}
	return found[0]
}

func upstreamTraceparent(t *testing.T, resp *federation.Response) string {
	t.Helper()
	var body struct {
		Traceparent string `json:"traceparent"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Traceparent
}

// A call continues the trace in ctx: its span is the child of the caller's, in the caller's
// tracer, and the upstream receives the same trace id.
func TestCallContinuesTheTraceInContext(t *testing.T) {
	_, c := start(t)
	exporter, tp := tracer(t)
	traced := fedotel.New(c, fedotel.WithTracerProvider(tp), fedotel.WithPropagator(propagation.TraceContext{}))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "handler")
	resp, err := traced.Get(ctx, "user", "/api/v1/users/7")
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	call := only(t, exporter, fedotel.CallSpan)
	if call.Parent.SpanID() != parent.SpanContext().SpanID() || call.SpanKind != trace.SpanKindClient {
		t.Fatalf("call parent %v kind %v, want %v client", call.Parent.SpanID(), call.SpanKind, parent.SpanContext().SpanID())
	}
	traceID := parent.SpanContext().TraceID().String()
	if got := strings.Split(upstreamTraceparent(t, resp), "-"); len(got) != 4 || got[1] != traceID {
		t.Fatalf("upstream traceparent %v, want trace %s", got, traceID)
	}
	a := attrs(call)
	want := map[string]string{"service": "user", "method": "GET", "path": "/api/v1/users/7", "trace_id": traceID,
		"outcome": "success", "cache": "bypass", "cluster": "zervigo"}
	for k, v := range want {
		if a[k].AsString() != v {
			t.Errorf("attribute %s = %q, want %q", k, a[k].AsString(), v)
		}
	}
	if a["attempts"].AsInt64() != 1 {
		t.Errorf("attempts = %v", a["attempts"])
	}
	attempt := only(t, exporter, fedotel.AttemptSpan)
	at := attrs(attempt)
	if attempt.Parent.SpanID() != call.SpanContext.SpanID() || at["instance"].AsString() != resp.Instance ||
		at["status"].AsInt64() != 200 || at["attempt"].AsInt64() != 1 || at["cluster"].AsString() != "zervigo" {
		t.Fatalf("attempt span parent %v attributes %v", attempt.Parent.SpanID(), at)
	}
	if _, failed := at["error_kind"]; failed {
		t.Fatalf("a successful attempt has error_kind %v", at["error_kind"])
	}
	if attempt.StartTime.Before(call.StartTime) || attempt.EndTime.After(call.EndTime) || attempt.EndTime.Before(attempt.StartTime) {
		t.Fatalf("attempt %v..%v outside call %v..%v", attempt.StartTime, attempt.EndTime, call.StartTime, call.EndTime)
	}
}

// A call that retries and fails over records every attempt, in order, with what it did.
func TestFailoverRecordsEveryAttempt(t *testing.T) {
	sb, c := start(t)
	if err := sb.SetBehavior("zervigo", "user-service", federationtest.All, federationtest.Behavior{Status: 503}); err != nil {
		t.Fatal(err)
	}
	exporter, tp := tracer(t)
	resp, err := fedotel.New(c, fedotel.WithTracerProvider(tp)).Get(context.Background(), "user", "/failover")
	if err != nil || resp.Cluster != "looma" {
		t.Fatalf("resp %+v err %v, want an answer from looma", resp, err)
	}
	var spans []tracetest.SpanStub
	for _, s := range exporter.GetSpans() {
		if s.Name == fedotel.AttemptSpan {
			spans = append(spans, s)
		}
	}
	sort.Slice(spans, func(i, j int) bool {
		return attrs(spans[i])["attempt"].AsInt64() < attrs(spans[j])["attempt"].AsInt64()
	})
	if len(spans) != len(resp.Tried) || len(spans) < 2 {
		t.Fatalf("%d attempt spans, %d attempts", len(spans), len(resp.Tried))
	}
	first, last := attrs(spans[0]), attrs(spans[len(spans)-1])
	if first["error_kind"].AsString() != "retryable_status" || first["status"].AsInt64() != 503 || first["cluster"].AsString() != "zervigo" {
		t.Fatalf("first attempt %v", first)
	}
	if last["cluster"].AsString() != "looma" || last["status"].AsInt64() != 200 {
		t.Fatalf("last attempt %v", last)
	}
	for i := 1; i < len(spans); i++ {
		if spans[i].StartTime.Before(spans[i-1].EndTime) {
			t.Fatalf("attempt %d starts before attempt %d ends", i+1, i)
		}
	}
}

type recording struct {
	propagation.TextMapPropagator
	injected map[string]string
}

func (r *recording) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	r.TextMapPropagator.Inject(ctx, carrier)
	for _, k := range carrier.Keys() {
		r.injected[strings.ToLower(k)] = carrier.Get(k)
	}
}

// The tracestate of the context goes with the traceparent; a failed call marks its span.
func TestTracestateIsSentAndFailuresMarkTheSpan(t *testing.T) {
	sb, c := start(t)
	if err := sb.SetBehavior("zervigo", "user-service", federationtest.All, federationtest.Behavior{Delay: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetBehavior("looma", "looma-user-api", federationtest.All, federationtest.Behavior{Delay: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	exporter, tp := tracer(t)
	prop := &recording{TextMapPropagator: propagation.TraceContext{}, injected: map[string]string{}}
	traced := fedotel.New(c, fedotel.WithTracerProvider(tp), fedotel.WithPropagator(prop))
	state, err := trace.ParseTraceState("vendor=v1")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0x4b, 0xf9}, SpanID: trace.SpanID{0x01},
		TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	_, err = traced.Do(ctx, "user", &federation.Request{Path: "/slow", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, federation.ErrTimeout) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if prop.injected["tracestate"] != "vendor=v1" || !strings.HasPrefix(prop.injected["traceparent"], "00-4bf9") {
		t.Fatalf("injected %v", prop.injected)
	}
	call := only(t, exporter, fedotel.CallSpan)
	if attrs(call)["outcome"].AsString() != "timeout" || call.Status.Code != codes.Error {
		t.Fatalf("outcome %v status %v", attrs(call)["outcome"], call.Status)
	}
}
