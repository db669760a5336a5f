package federation_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHedgedCallReportsItsHedge: with one of two instances answering 2 s late and a 20 ms
// hedge delay, a call whose first attempt went to the slow instance is answered by a hedge to
// the fast one; its attempts say which one was the hedge, and the hedge metrics count it.
func TestHedgedCallReportsItsHedge(t *testing.T) {
	slow := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done(): // the losing attempt's connection is closed
		}
		w.WriteHeader(http.StatusOK)
	})
	fast := upstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	c := newClient(t, oneClusterConfig([]int{port(t, slow), port(t, fast)},
		"    load_balancing: round_robin\n    hedge: { delay: 20ms }\n"))
	hedged := false
	for i := 0; i < 10 && !hedged; i++ {
		start := time.Now()
		resp, err := c.Get(context.Background(), "svc", "/hedge")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("call %d took %v: the hedge did not answer it", i, took)
		}
		switch len(resp.Tried) {
		case 1:
			if a := resp.Tried[0]; a.Hedge || a.Instance != "i1" || a.Outcome != "success" {
				t.Fatalf("call %d: an unhedged call's attempt %+v", i, a)
			}
		case 2:
			first, second := resp.Tried[0], resp.Tried[1]
			if first.Hedge || first.Instance != "i0" || first.Outcome != "cancelled" {
				t.Fatalf("call %d: first attempt %+v, want i0 cancelled, not a hedge", i, first)
			}
			if !second.Hedge || second.Instance != "i1" || second.Outcome != "success" {
				t.Fatalf("call %d: second attempt %+v, want a successful hedge to i1", i, second)
			}
			if resp.Instance != "i1" {
				t.Fatalf("call %d answered by %s, want the hedge's i1", i, resp.Instance)
			}
			hedged = true
		default:
			t.Fatalf("call %d: %d attempts %+v", i, len(resp.Tried), resp.Tried)
		}
	}
	if !hedged {
		t.Fatal("no call was hedged in 10 round-robin calls")
	}
	metrics, err := c.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`federation_hedges_total{service="svc"} 1`,
		`federation_hedges_won_total{service="svc"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}
