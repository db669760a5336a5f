package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

// One broker for every sync test of this binary, started by the first one that needs it and
// killed when the binary ends (a watchdog kills it if the binary dies); or the one at
// $FEDERATION_KAFKA_BOOTSTRAP.
var (
	kafkaOnce   sync.Once
	kafkaBroker *federationtest.Kafka
	kafkaSkip   string
	kafkaErr    error
	prefixes    atomic.Int32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kafkaBroker != nil {
		kafkaBroker.Close()
	}
	os.Exit(code)
}

// broker is the shared broker, or skips t (no Java) or fails it (the broker did not start).
func broker(t *testing.T) *federationtest.Kafka {
	t.Helper()
	kafkaOnce.Do(func() {
		if kafkaBroker = federationtest.KafkaFromEnv(); kafkaBroker != nil {
			return
		}
		kafkaSkip, kafkaErr = federationtest.KafkaSkipReason()
		if kafkaErr == nil && kafkaSkip == "" {
			kafkaBroker, kafkaErr = federationtest.StartKafka()
		}
	})
	switch {
	case kafkaErr != nil:
		t.Fatal(kafkaErr)
	case kafkaSkip != "":
		t.Skip(kafkaSkip)
	}
	return kafkaBroker
}

// syncPair starts the zervigo and looma sync runtimes on the shared broker, with topics of
// their own.
func syncPair(t *testing.T) (zervigo, looma *federation.DataSync) {
	t.Helper()
	k := broker(t)
	config := federationtest.SyncConfigYAML(k.BootstrapServers(), fmt.Sprintf("go%d-%d", os.Getpid(), prefixes.Add(1)))
	open := func(local string) *federation.DataSync {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, err := federation.NewDataSync(ctx, config, federation.YAML, local)
		if err != nil {
			t.Fatalf("NewDataSync(%s): %v", local, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open("zervigo"), open("looma")
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish(t *testing.T, s *federation.DataSync, change federation.Change) federation.Published {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := s.Publish(ctx, change)
	if err != nil {
		t.Fatalf("Publish %s/%s: %v", change.EntityType, change.EntityID, err)
	}
	return p
}

func overall(t *testing.T, s *federation.DataSync, entityType, id string) string {
	t.Helper()
	status, err := s.Status(entityType, id)
	if err != nil {
		t.Fatal(err)
	}
	if status == nil {
		return "unknown"
	}
	return status.Overall
}

// funcStore is the zervigo-style handler: plain funcs over a map.
type funcStore struct {
	mu      sync.Mutex
	records map[string]*federation.EntityState
	applies map[string]int // per event id
	fail    func(*federation.AppliedChange) error
}

func newFuncStore() *funcStore {
	return &funcStore{records: map[string]*federation.EntityState{}, applies: map[string]int{}}
}

func (f *funcStore) target() federation.TargetFuncs {
	return federation.TargetFuncs{
		StampFunc: func(_ context.Context, entityType, id string) (*federation.EntityState, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.records[entityType+"/"+id], nil
		},
		ApplyFunc: func(_ context.Context, c *federation.AppliedChange) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applies[c.Event.Stamp.EventID]++
			if f.fail != nil {
				if err := f.fail(c); err != nil {
					return err
				}
			}
			f.records[c.Event.EntityType+"/"+c.Event.EntityID] = c.State
			return nil
		},
	}
}

func (f *funcStore) field(key, name string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.records[key]; s != nil {
		return s.Data[name]
	}
	return nil
}

func (f *funcStore) appliesOf(eventID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies[eventID]
}

func TestSyncNewDataSyncHonoursItsContext(t *testing.T) {
	// Nothing listens on port 1: creating the topics waits until the context ends.
	config := federationtest.SyncConfigYAML("127.0.0.1:1", "unreachable")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := federation.NewDataSync(ctx, config, federation.YAML, "zervigo")
	if !errors.Is(err, federation.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled NewDataSync: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancelled NewDataSync returned after %v", took)
	}
	plain := "clusters:\n  a: { static: { svc: [{ address: 127.0.0.1, port: 1 }] } }\n"
	_, err = federation.NewDataSync(context.Background(), plain, federation.YAML, "")
	if !errors.Is(err, federation.ErrConfig) || !strings.Contains(err.Error(), "no `sync` section") {
		t.Fatalf("configuration without sync: %v", err)
	}
}

func TestSyncPublishedChangesReachAFuncHandlerAndStatusCompletes(t *testing.T) {
	zervigo, looma := syncPair(t)
	users := federation.NewMemoryTarget() // zervigo's own store

	created := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "42", Operation: federation.Create,
		Data: map[string]any{"name": "Ada", "plan": "free"}})
	users.Put("user", "42", created.State)
	if created.Stamp.Origin != "zervigo" || created.Event.Stamp != created.Stamp || created.State.Data["name"] != "Ada" {
		t.Fatalf("published %+v", created)
	}
	// Nobody consumes yet: the change is pending in looma.
	if got := overall(t, zervigo, "user", "42"); got != "pending" {
		t.Fatalf("status before looma subscribed: %s", got)
	}

	store := newFuncStore()
	sub, err := looma.Subscribe(context.Background(), store.target())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	eventually(t, "looma has user 42", func() bool { return store.field("user/42", "name") == "Ada" })
	eventually(t, "status completed", func() bool { return overall(t, zervigo, "user", "42") == "completed" })

	updated := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "42", Operation: federation.Update,
		Data: map[string]any{"name": "Ada", "plan": "pro"}, Base: users.Get("user", "42")})
	eventually(t, "looma has the update", func() bool { return store.field("user/42", "plan") == "pro" })
	status, err := zervigo.Status("user", "42")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "update completed", func() bool { return overall(t, zervigo, "user", "42") == "completed" })
	if status.EventID != updated.Stamp.EventID {
		t.Fatalf("status is of event %s, want the update %s", status.EventID, updated.Stamp.EventID)
	}
	if n := store.appliesOf(updated.Stamp.EventID); n != 1 {
		t.Fatalf("the update was applied %d times", n)
	}
	metrics, err := zervigo.MetricsText()
	if err != nil || !strings.Contains(metrics, `federation_sync_published_total{entity_type="user"} 2`) {
		t.Fatalf("metrics (%v):\n%s", err, metrics)
	}
	health, err := looma.Health()
	if err != nil || health.LocalCluster != "looma" || health.Origins["zervigo"].Consumed < 2 || !health.Healthy {
		t.Fatalf("looma health %+v (%v)", health, err)
	}
}

func TestSyncBadChangesAreRejectedByName(t *testing.T) {
	zervigo, _ := syncPair(t)
	ctx := context.Background()
	_, err := zervigo.Publish(ctx, federation.Change{EntityType: "invoice", EntityID: "1", Operation: federation.Create})
	if !errors.Is(err, federation.ErrInvalidRequest) || !strings.Contains(err.Error(), `"invoice"`) {
		t.Fatalf("unknown type: %v", err)
	}
	_, err = zervigo.Publish(ctx, federation.Change{EntityType: "company", EntityID: "1", Operation: federation.Create,
		Data: map[string]any{"city": "Oslo"}})
	if !errors.Is(err, federation.ErrInvalidRequest) || !strings.Contains(err.Error(), "name") {
		t.Fatalf("missing required field: %v", err)
	}
	_, err = zervigo.Publish(ctx, federation.Change{EntityType: "user", EntityID: "1", Operation: "upsert"})
	if !errors.Is(err, federation.ErrInvalidRequest) || !strings.Contains(err.Error(), "upsert") {
		t.Fatalf("unknown operation: %v", err)
	}
	_, err = zervigo.Publish(ctx, federation.Change{EntityType: "user", EntityID: "1", Operation: federation.Update,
		Base: &federation.EntityState{}})
	if !errors.Is(err, federation.ErrInvalidRequest) || !strings.Contains(err.Error(), "Change.Base") {
		t.Fatalf("hand-made base: %v", err)
	}
}

func TestSyncFailingHandlerDeadLettersTheEventAndThePartitionGoesOn(t *testing.T) {
	zervigo, looma := syncPair(t)
	store := newFuncStore()
	store.fail = func(c *federation.AppliedChange) error {
		if c.Event.Data["poison"] == true {
			return errors.New("the store refuses poison")
		}
		return nil
	}
	sub, err := looma.Subscribe(context.Background(), store.target())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	first := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "7", Operation: federation.Create,
		Data: map[string]any{"name": "Bo"}})
	eventually(t, "create applied", func() bool { return store.field("user/7", "name") == "Bo" })
	poison := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "7", Operation: federation.Update,
		Data: map[string]any{"name": "Bo", "poison": true}, Base: first.State})
	eventually(t, "poison failed", func() bool { return overall(t, zervigo, "user", "7") == "failed" })
	status, err := zervigo.Status("user", "7")
	if err != nil || !strings.Contains(status.Targets["looma"].Reason, "the store refuses poison") {
		t.Fatalf("failed status %+v (%v)", status, err)
	}
	if n := store.appliesOf(poison.Stamp.EventID); n != 3 {
		t.Fatalf("poison tried %d times, want max_attempts = 3", n)
	}
	metrics, err := looma.MetricsText()
	if err != nil || !strings.Contains(metrics, `federation_sync_dead_letters_total{reason="handler"} 1`) {
		t.Fatalf("dead letter not counted (%v):\n%s", err, metrics)
	}
	// The same entity (so the same partition) goes on.
	publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "7", Operation: federation.Update,
		Data: map[string]any{"name": "Bo Two"}, Base: poison.State})
	eventually(t, "next change applied", func() bool { return store.field("user/7", "name") == "Bo Two" })
	eventually(t, "next change completed", func() bool { return overall(t, zervigo, "user", "7") == "completed" })
}

func TestSyncContextCancellationStopsTheSubscription(t *testing.T) {
	zervigo, looma := syncPair(t)
	first := newFuncStore()
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := looma.Subscribe(ctx, first.target())
	if err != nil {
		t.Fatal(err)
	}
	publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "1", Operation: federation.Create, Data: map[string]any{"name": "A"}})
	eventually(t, "first subscriber applied", func() bool { return first.field("user/1", "name") == "A" })
	cancel()
	select {
	case <-sub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the subscription did not stop when its context was cancelled")
	}
	// Published after the stop: only a new member of the group gets it.
	later := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "2", Operation: federation.Create, Data: map[string]any{"name": "B"}})
	second := newFuncStore()
	sub2, err := looma.Subscribe(context.Background(), second.target())
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Stop()
	eventually(t, "second subscriber applied", func() bool { return second.field("user/2", "name") == "B" })
	if n := first.appliesOf(later.Stamp.EventID); n != 0 {
		t.Fatalf("the stopped subscription still applied an event (%d times)", n)
	}
	if n := second.appliesOf(later.Stamp.EventID); n != 1 {
		t.Fatalf("the new subscription applied the event %d times", n)
	}
}

func TestSyncApplyLocalKeepsAChangeThatLandedSinceThePublish(t *testing.T) {
	zervigo, looma := syncPair(t)
	users := federation.NewMemoryTarget() // zervigo's store, fed by its subscriber too
	sub, err := zervigo.Subscribe(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	ctx := context.Background()

	mine := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "5", Operation: federation.Create, Data: map[string]any{"name": "Z1"}})
	decision, err := zervigo.ApplyLocal(ctx, users, mine)
	if err != nil || decision.Effect != federation.Applied || decision.Conflict || users.Get("user", "5").Data["name"] != "Z1" {
		t.Fatalf("own create: %+v (%v)", decision, err)
	}

	// looma edits user 6 while zervigo's writer, not having seen it, edits it too.
	publish(t, looma, federation.Change{EntityType: "user", EntityID: "6", Operation: federation.Create, Data: map[string]any{"name": "L"}})
	eventually(t, "looma's change reached zervigo's store", func() bool {
		s := users.Get("user", "6")
		return s != nil && s.Data["name"] == "L"
	})
	concurrent := publish(t, zervigo, federation.Change{EntityType: "user", EntityID: "6", Operation: federation.Create, Data: map[string]any{"name": "Z"}})
	decision, err = zervigo.ApplyLocal(ctx, users, concurrent)
	if err != nil || !decision.Conflict {
		t.Fatalf("concurrent change recorded without a conflict: %+v (%v)", decision, err)
	}
	stored, _ := json.Marshal(users.Get("user", "6"))
	if !strings.Contains(string(stored), `"looma"`) || !strings.Contains(string(stored), `"zervigo"`) {
		t.Fatalf("the stored state lost a cluster's version: %s", stored)
	}

	if _, err := zervigo.ApplyLocal(ctx, users, federation.Published{}); !errors.Is(err, federation.ErrInvalidRequest) {
		t.Fatalf("a hand-made Published: %v", err)
	}
}

func TestSyncCloseStopsSubscriptionsAndRefusesLaterCalls(t *testing.T) {
	_, looma := syncPair(t)
	sub, err := looma.Subscribe(context.Background(), federation.NewMemoryTarget())
	if err != nil {
		t.Fatal(err)
	}
	if err := looma.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Done():
	default:
		t.Fatal("Close returned before its subscription stopped")
	}
	sub.Stop() // after Close: returns at once
	_, err = looma.Publish(context.Background(), federation.Change{EntityType: "user", EntityID: "1", Operation: federation.Create})
	if !errors.Is(err, federation.ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
	if _, err := looma.Status("user", "1"); !errors.Is(err, federation.ErrClosed) {
		t.Fatalf("status after Close: %v", err)
	}
	if _, err := looma.Subscribe(context.Background(), federation.NewMemoryTarget()); !errors.Is(err, federation.ErrClosed) {
		t.Fatalf("subscribe after Close: %v", err)
	}
}

// Runs last among the sync tests: it kills the shared broker and restarts it.
func TestSyncPublishHonoursContextWhileTheBrokerIsDown(t *testing.T) {
	if os.Getenv(federationtest.KafkaEnv) != "" {
		t.Skip("kills its broker: not one from " + federationtest.KafkaEnv)
	}
	zervigo, _ := syncPair(t)
	k := broker(t)
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := k.Restart(); err != nil {
			t.Errorf("restarting the broker: %v", err)
		}
	}()
	change := federation.Change{EntityType: "user", EntityID: "9", Operation: federation.Create, Data: map[string]any{"name": "C"}}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := zervigo.Publish(ctx, change)
	if !errors.Is(err, federation.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled publish: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancelled publish returned after %v (publish_timeout is 20s)", took)
	}

	deadline, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err = zervigo.Publish(deadline, change)
	if !errors.Is(err, federation.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish past its deadline: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("publish with a 500ms deadline returned after %v", took)
	}
}
