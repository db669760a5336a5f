package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	federation "github.com/federation/federation-go"
)

// modelConfig has logical service "ai" (default tags [model=v2], round robin) over one
// instance per model version: v2 on port v2, v3 on port v3.
func modelConfig(v2, v3 int) string {
	return fmt.Sprintf(`clusters:
  a:
    load_balancing: round_robin
    static:
      ai-service:
        - { id: ai-v2, address: 127.0.0.1, port: %d, tags: [model=v2] }
        - { id: ai-v3, address: 127.0.0.1, port: %d, tags: [model=v3] }
services:
  ai:
    names: { a: ai-service }
    tags: [model=v2]
`, v2, v3)
}

// TestPerCallTagsChooseTheModelVersion: Request.Tags replaces the service's tags for one call
// (nil keeps them, an empty slice drops the filter); bad tags fail before anything is sent.
func TestPerCallTagsChooseTheModelVersion(t *testing.T) {
	var received atomic.Int64
	answer := func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusOK)
	}
	v2, v3 := upstream(t, answer), upstream(t, answer)
	c := newClient(t, modelConfig(port(t, v2), port(t, v3)))
	ctx := context.Background()
	served := func(tags []string) string {
		t.Helper()
		resp, err := c.Do(ctx, "ai", &federation.Request{Path: "/infer", Tags: tags})
		if err != nil {
			t.Fatalf("tags %q: %v", tags, err)
		}
		return resp.Instance
	}
	for range 3 {
		if got := served(nil); got != "ai-v2" {
			t.Fatalf("default tags served by %s", got)
		}
		if got := served([]string{"model=v3"}); got != "ai-v3" {
			t.Fatalf("tags [model=v3] served by %s", got)
		}
	}
	seen := map[string]bool{}
	for range 4 {
		seen[served([]string{})] = true
	}
	if !seen["ai-v2"] || !seen["ai-v3"] {
		t.Fatalf("no tag filter: served only by %v", seen)
	}
	_, err := c.Do(ctx, "ai", &federation.Request{Tags: []string{"model=v9"}})
	if !errors.Is(err, federation.ErrNoHealthyInstance) {
		t.Fatalf("tags [model=v9]: %v", err)
	}

	before := received.Load()
	for _, bad := range [][]string{{""}, {"model=v3", "a\x00b"}, make([]string, 65)} {
		_, err := c.Do(ctx, "ai", &federation.Request{Tags: bad})
		matchesOnly(t, err, federation.ErrInvalidRequest)
		if !strings.Contains(err.Error(), "tag") {
			t.Errorf("tags %q: the error does not name the tags: %v", bad, err)
		}
	}
	if got := received.Load(); got != before {
		t.Fatalf("bad tags reached an upstream (%d requests)", got-before)
	}
}
