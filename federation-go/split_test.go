package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	federation "github.com/federation/federation-go"
)

// TestSplitReportsTheArmAndWhyAnEmptyCanaryWasLeft: a service split 50/50 between a stable arm
// (model=v2, one instance) and a canary whose tags match no instance. Every call is served by
// the stable instance; Response.Split names the arm each user's key chose (the same on every
// call), the arm that served, and the fallback reason for the canary's users; a Tags override
// bypasses the split (Split is nil).
func TestSplitReportsTheArmAndWhyAnEmptyCanaryWasLeft(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	v2, v3 := upstream(t, ok), upstream(t, ok)
	config := modelConfig(port(t, v2), port(t, v3)) + `    split:
      sticky_key: header:X-User-Id
      arms:
        stable: { tags: [model=v2], weight: 50 }
        canary: { tags: [model=v9], weight: 50 }
`
	c := newClient(t, config)
	ctx := context.Background()
	call := func(user string) *federation.Response {
		t.Helper()
		header := http.Header{}
		header.Set("X-User-Id", user)
		resp, err := c.Do(ctx, "ai", &federation.Request{Path: "/infer", Header: header})
		if err != nil {
			t.Fatalf("user %s: %v", user, err)
		}
		if resp.Split == nil || resp.Instance != "ai-v2" {
			t.Fatalf("user %s: split %+v, served by %s", user, resp.Split, resp.Instance)
		}
		return resp
	}
	seen := map[string]federation.Split{}
	for i := range 20 {
		user := fmt.Sprintf("user-%d", i)
		first, again := call(user).Split, call(user).Split
		if first.Arm != again.Arm {
			t.Fatalf("user %s moved from %s to %s", user, first.Arm, again.Arm)
		}
		seen[first.Arm] = *first
	}
	stable, canary := seen["stable"], seen["canary"]
	if stable.ServedArm != "stable" || stable.Fallback != "" {
		t.Errorf("stable user's split: %+v", stable)
	}
	if canary.ServedArm != "stable" || !strings.HasPrefix(canary.Fallback, "empty") {
		t.Errorf("canary user's split: %+v", canary)
	}
	resp, err := c.Do(ctx, "ai", &federation.Request{Path: "/infer", Tags: []string{"model=v3"}})
	if err != nil || resp.Split != nil || resp.Instance != "ai-v3" {
		t.Fatalf("a Tags override: %v, split %+v, served by %v", err, resp.Split, resp.Instance)
	}
}
