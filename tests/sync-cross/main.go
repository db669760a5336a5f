// Command sync-cross is the zervigo (Go) side of the cross-language data sync test
// (test_sync_cross.py starts the broker and plays the looma side in Python).
//
// Without it, the Go and Python bindings could each pass their own tests and still disagree on
// the wire: a field encoded differently, a stamp one side cannot read back, a conflict resolved
// two ways. Every mode prints JSON lines on stdout; the Python test compares them with its own
// view. Usage:
//
//	sync-cross publish <config.yaml> <entities> <updates>   publish, wait until looma applied all
//	sync-cross apply <config.yaml> <expected.json>          apply until every entity has the expected event
//	sync-cross concurrent <config.yaml> <type> <id> <name>  on "go" from stdin publish an edit of one
//	                                                        entity; print it once looma's edit arrived
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	federation "github.com/federation/federation-go"
)

const deadline = 90 * time.Second

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sync-cross:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: sync-cross publish|apply|concurrent <config.yaml> ...")
	}
	text, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	sync, err := federation.NewDataSync(ctx, string(text), federation.YAML, "zervigo")
	if err != nil {
		return err
	}
	defer sync.Close()
	switch {
	case args[0] == "publish" && len(args) == 4:
		return publish(ctx, sync, args[2], args[3])
	case args[0] == "apply" && len(args) == 3:
		return apply(ctx, sync, args[2])
	case args[0] == "concurrent" && len(args) == 5:
		return concurrent(ctx, sync, args[2], args[3], args[4])
	}
	return fmt.Errorf("unknown mode or arguments: %q", args)
}

func emit(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(line))
	return err
}

// publish creates `entities` users and updates each `updates` times, every change based on the
// previous one's state; then waits until looma applied the last change of each and prints
// {"id", "state", "status"} per entity.
func publish(ctx context.Context, sync *federation.DataSync, entities, updates string) error {
	n, err := strconv.Atoi(entities)
	if err != nil {
		return fmt.Errorf("entities: %w", err)
	}
	u, err := strconv.Atoi(updates)
	if err != nil {
		return fmt.Errorf("updates: %w", err)
	}
	last := make([]*federation.EntityState, n)
	for round := 0; round <= u; round++ {
		for i := range n {
			op := federation.Update
			if round == 0 {
				op = federation.Create
			}
			p, err := sync.Publish(ctx, federation.Change{
				EntityType: "user", EntityID: fmt.Sprintf("go-%d", i), Operation: op,
				Data: map[string]any{"name": fmt.Sprintf("user %d", i), "round": round, "lang": "go"},
				Base: last[i],
			})
			if err != nil {
				return fmt.Errorf("publish go-%d round %d: %w", i, round, err)
			}
			last[i] = p.State
		}
	}
	for i := range n {
		id := fmt.Sprintf("go-%d", i)
		status, err := waitStatus(ctx, sync, "user", id)
		if err != nil {
			return err
		}
		if err := emit(map[string]any{"id": id, "state": last[i], "status": status}); err != nil {
			return err
		}
	}
	return nil
}

func waitStatus(ctx context.Context, sync *federation.DataSync, entityType, id string) (*federation.SyncStatus, error) {
	for {
		status, err := sync.Status(entityType, id)
		if err != nil {
			return nil, err
		}
		if status != nil && status.Overall != "pending" {
			return status, nil
		}
		select {
		case <-ctx.Done():
			return status, fmt.Errorf("%s/%s still pending: %w", entityType, id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// apply subscribes with a MemoryTarget until every entity of expected.json ({"id": "event id"})
// holds that event's state, then prints {"id", "state", "applied"} per entity.
func apply(ctx context.Context, sync *federation.DataSync, expectedPath string) error {
	raw, err := os.ReadFile(expectedPath)
	if err != nil {
		return err
	}
	var expected map[string]string
	if err := json.Unmarshal(raw, &expected); err != nil {
		return fmt.Errorf("%s: %w", expectedPath, err)
	}
	target := federation.NewMemoryTarget()
	sub, err := sync.Subscribe(ctx, target)
	if err != nil {
		return err
	}
	defer sub.Stop()
	for id, event := range expected {
		state, err := waitState(ctx, target, id, func(s *federation.EntityState) bool {
			return s.Version.EventID == event
		})
		if err != nil {
			return err
		}
		applied := 0
		for _, c := range target.Applied() {
			if c.Event.EntityID == id {
				applied++
			}
		}
		if err := emit(map[string]any{"id": id, "state": state, "applied": applied}); err != nil {
			return err
		}
	}
	return nil
}

func waitState(ctx context.Context, target *federation.MemoryTarget, id string, done func(*federation.EntityState) bool) (*federation.EntityState, error) {
	for {
		if s := target.Get("user", id); s != nil && done(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("user/%s: %w (holds %+v)", id, ctx.Err(), target.Get("user", id))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// concurrent subscribes, prints {"ready": true}, and on a line "go" from stdin publishes a
// create of entityType/id (no base: concurrent with looma's edit of the same entity) and
// applies it locally; once looma's edit has been consumed and looma acknowledged ours, it
// prints {"id", "state", "status"}.
func concurrent(ctx context.Context, sync *federation.DataSync, entityType, id, name string) error {
	target := federation.NewMemoryTarget()
	sub, err := sync.Subscribe(ctx, target)
	if err != nil {
		return err
	}
	defer sub.Stop()
	if err := emit(map[string]any{"ready": true}); err != nil {
		return err
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || line != "go\n" {
		return fmt.Errorf("expected \"go\" on stdin, got %q (%v)", line, err)
	}
	p, err := sync.Publish(ctx, federation.Change{
		EntityType: entityType, EntityID: id, Operation: federation.Create,
		Data: map[string]any{"name": name, "lang": "go"},
	})
	if err != nil {
		return err
	}
	if _, err := sync.ApplyLocal(ctx, target, p); err != nil {
		return err
	}
	status, err := waitStatus(ctx, sync, entityType, id)
	if err != nil {
		return err
	}
	for {
		h, err := sync.Health()
		if err != nil {
			return err
		}
		if h.Origins["looma"].Consumed >= 1 && h.Pending == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("looma's edit never arrived: %w (health %+v)", ctx.Err(), h)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return emit(map[string]any{"id": id, "state": target.Get(entityType, id), "status": status})
}
