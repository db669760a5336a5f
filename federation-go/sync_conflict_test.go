package federation_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

// callbackConfig is the shared test configuration with users under `policy: callback`.
func callbackConfig(t *testing.T) string {
	t.Helper()
	k := broker(t)
	config := federationtest.SyncConfigYAML(k.BootstrapServers(), fmt.Sprintf("goc%d-%d", os.Getpid(), prefixes.Add(1)))
	return strings.Replace(config, "user: {}", "user: { policy: callback }", 1)
}

func openWithConflicts(t *testing.T, config, local string, conflicts map[string]federation.ConflictFunc) (*federation.DataSync, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := federation.NewDataSyncWithConflicts(ctx, config, federation.YAML, local, conflicts)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// joinNames merges two versions' names in stamp order, recording every question asked.
type joinNames struct {
	mu    sync.Mutex
	asked []string
}

func (j *joinNames) decide(first, second federation.ConflictVersion) (federation.Resolution, error) {
	j.mu.Lock()
	j.asked = append(j.asked, first.Stamp.Origin+"<"+second.Stamp.Origin)
	j.mu.Unlock()
	return federation.Merge(map[string]any{"name": fmt.Sprint(first.Data["name"], "+", second.Data["name"])}), nil
}

// older orders stamps as the core does: hybrid time, then cluster name.
func older(a, b federation.Stamp) bool {
	if a.HLC.WallMs != b.HLC.WallMs {
		return a.HLC.WallMs < b.HLC.WallMs
	}
	if a.HLC.Logical != b.HLC.Logical {
		return a.HLC.Logical < b.HLC.Logical
	}
	return a.Origin < b.Origin
}

func TestSyncConflictFuncDecidesTheSameMergeOnBothClusters(t *testing.T) {
	config := callbackConfig(t)
	zj, lj := &joinNames{}, &joinNames{}
	zervigo, err := openWithConflicts(t, config, "zervigo", map[string]federation.ConflictFunc{"user": zj.decide})
	if err != nil {
		t.Fatal(err)
	}
	looma, err := openWithConflicts(t, config, "looma", map[string]federation.ConflictFunc{"user": lj.decide})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	zstore, lstore := federation.NewMemoryTarget(), federation.NewMemoryTarget()
	for _, side := range []struct {
		s     *federation.DataSync
		store *federation.MemoryTarget
	}{{zervigo, zstore}, {looma, lstore}} {
		sub, err := side.s.Subscribe(ctx, side.store)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
	}
	// Both create user 7 without having seen the other's: a conflict on both sides.
	l := publish(t, looma, federation.Change{EntityType: "user", EntityID: "7", Operation: federation.Create, Data: map[string]any{"name": "L"}})
	z := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "7", Operation: federation.Create, Data: map[string]any{"name": "Z"}})
	if _, err := looma.ApplyLocal(ctx, lstore, l); err != nil {
		t.Fatal(err)
	}
	if _, err := zervigo.ApplyLocal(ctx, zstore, z); err != nil {
		t.Fatal(err)
	}
	want := "L+Z" // the older stamp's name first
	if older(z.Event.Stamp, l.Event.Stamp) {
		want = "Z+L"
	}
	for name, store := range map[string]*federation.MemoryTarget{"zervigo": zstore, "looma": lstore} {
		eventually(t, name+" stores the merged record "+want, func() bool {
			s := store.Get("user", "7")
			return s != nil && s.Data["name"] == want
		})
	}
	for name, j := range map[string]*joinNames{"zervigo": zj, "looma": lj} {
		j.mu.Lock()
		asked := append([]string(nil), j.asked...)
		j.mu.Unlock()
		if len(asked) == 0 {
			t.Fatalf("%s's ConflictFunc was never asked", name)
		}
	}
}

func TestSyncFailingConflictFuncFallsBackToLastWriterWins(t *testing.T) {
	config := callbackConfig(t)
	failing := func(federation.ConflictVersion, federation.ConflictVersion) (federation.Resolution, error) {
		return federation.Resolution{}, errors.New("no rule for this")
	}
	zervigo, err := openWithConflicts(t, config, "zervigo", map[string]federation.ConflictFunc{"user": failing})
	if err != nil {
		t.Fatal(err)
	}
	looma, err := openWithConflicts(t, config, "looma", map[string]federation.ConflictFunc{"user": failing})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := federation.NewMemoryTarget()
	sub, err := zervigo.Subscribe(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	publish(t, looma, federation.Change{EntityType: "user", EntityID: "8", Operation: federation.Create, Data: map[string]any{"name": "L"}})
	eventually(t, "looma's user 8 reached zervigo", func() bool { return store.Get("user", "8") != nil })
	z := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "8", Operation: federation.Create, Data: map[string]any{"name": "Z"}})
	decision, err := zervigo.ApplyLocal(ctx, store, z)
	if err != nil || !decision.Conflict {
		t.Fatalf("expected a conflict decided despite the failing func: %+v (%v)", decision, err)
	}
	if name := store.Get("user", "8").Data["name"]; name != "Z" {
		t.Fatalf("last writer (zervigo's newer change) should win, stored %v", name)
	}
}

func TestSyncConflictFuncsMustMatchTheCallbackTypes(t *testing.T) {
	config := callbackConfig(t)
	keep := func(federation.ConflictVersion, federation.ConflictVersion) (federation.Resolution, error) {
		return federation.KeepSecond, nil
	}
	if _, err := openWithConflicts(t, config, "zervigo", nil); !errors.Is(err, federation.ErrConfig) || !strings.Contains(err.Error(), "callback") {
		t.Fatalf("a callback type without a func: %v", err)
	}
	funcs := map[string]federation.ConflictFunc{"user": keep, "resume": keep}
	if _, err := openWithConflicts(t, config, "zervigo", funcs); !errors.Is(err, federation.ErrConfig) || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("a func for a merge_fields type: %v", err)
	}
	if _, err := openWithConflicts(t, config, "zervigo", map[string]federation.ConflictFunc{"user": nil}); !errors.Is(err, federation.ErrInvalidRequest) {
		t.Fatalf("a nil func: %v", err)
	}
}

func TestSyncApplyLocalReportsAFailingStoreAsErrTarget(t *testing.T) {
	zervigo, _ := syncPair(t)
	p := publish(t, zervigo, federation.Change{EntityType: "company", EntityID: "1", Operation: federation.Create, Data: map[string]any{"name": "Acme"}})
	broken := federation.TargetFuncs{
		StampFunc: func(context.Context, string, string) (*federation.EntityState, error) {
			return nil, errors.New("disk full")
		},
		ApplyFunc: func(context.Context, *federation.AppliedChange) error { return nil },
	}
	_, err := zervigo.ApplyLocal(context.Background(), broken, p)
	if !errors.Is(err, federation.ErrTarget) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want ErrTarget naming the store's error, got %v", err)
	}
}
