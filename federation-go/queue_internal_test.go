package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// withWaitersTaken runs f while every wait-in-C slot is taken, so calls wait in Go and get
// their outcomes through the completion queue.
func withWaitersTaken(t *testing.T, f func()) {
	t.Helper()
	n := cap(waiterSlots)
	for range n {
		waiterSlots <- struct{}{}
	}
	defer func() {
		for range n {
			<-waiterSlots
		}
	}()
	f()
}

func queueTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	port := s.Listener.Addr().String()[strings.LastIndexByte(s.Listener.Addr().String(), ':')+1:]
	c, err := New(fmt.Sprintf("clusters:\n  a:\n    static:\n      svc-a: [{ id: i0, address: 127.0.0.1, port: %s }]\n"+
		"services:\n  svc:\n    names: { a: svc-a }\n", port), YAML)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestQueuedPathCompletesCallsErrorsAndCancellations(t *testing.T) {
	release := make(chan struct{})
	c := queueTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.Write([]byte("ok"))
	})
	withWaitersTaken(t, func() {
		// Through the queue (the upstream answers after the call started).
		resp, err := c.Get(context.Background(), "svc", "/")
		if err != nil || string(resp.Body) != "ok" {
			t.Fatalf("queued call: %v %v", resp, err)
		}
		// Completed while starting (no I/O): the outcome is taken without the queue.
		if _, err := c.Get(context.Background(), "nosuch", "/"); err == nil {
			t.Fatal("unknown service: no error")
		}
		// Cancelled while queued.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = c.Get(ctx, "svc", "/slow")
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("deadline while queued: %v", err)
		}
		// Many at once: one dispatcher delivers every outcome to its own goroutine.
		errs := make(chan error, 200)
		for i := range 200 {
			go func() {
				resp, err := c.Get(context.Background(), "svc", fmt.Sprintf("/?i=%d", i))
				if err == nil && string(resp.Body) != "ok" {
					err = fmt.Errorf("body %q", resp.Body)
				}
				errs <- err
			}()
		}
		for range 200 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
	close(release)
}
