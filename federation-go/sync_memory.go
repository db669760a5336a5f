package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"sync"
)

// MemoryTarget is an in-memory SyncTarget (for tests and examples): a map from entity to its
// stored state, written with compare-and-set like a real store should be.
type MemoryTarget struct {
	mu      sync.Mutex
	states  map[string]*EntityState
	applied []AppliedChange
}

// NewMemoryTarget is an empty MemoryTarget.
func NewMemoryTarget() *MemoryTarget {
	return &MemoryTarget{states: map[string]*EntityState{}}
}

func memoryKey(entityType, entityID string) string { return entityType + "/" + entityID }

// Get is the stored state of an entity (nil: none).
func (m *MemoryTarget) Get(entityType, entityID string) *EntityState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[memoryKey(entityType, entityID)]
}

// Put stores a state unconditionally (a service records its own Published.State this way).
func (m *MemoryTarget) Put(entityType, entityID string, state *EntityState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[memoryKey(entityType, entityID)] = state
}

// Applied lists every change written by the subscriber so far, in order.
func (m *MemoryTarget) Applied() []AppliedChange {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]AppliedChange(nil), m.applied...)
}

// Stamp returns the stored state.
func (m *MemoryTarget) Stamp(_ context.Context, entityType, entityID string) (*EntityState, error) {
	return m.Get(entityType, entityID), nil
}

// Apply stores change.State if the stored state is still change.Previous, else returns ErrStale.
func (m *MemoryTarget) Apply(_ context.Context, change *AppliedChange) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memoryKey(change.Event.EntityType, change.Event.EntityID)
	if !sameState(m.states[key], change.Previous) {
		return ErrStale
	}
	m.states[key] = change.State
	m.applied = append(m.applied, *change)
	return nil
}

// sameState compares two states by their JSON value.
func sameState(a, b *EntityState) bool {
	if a == nil || b == nil {
		return a == b
	}
	if bytes.Equal(a.raw, b.raw) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a.raw, &va) != nil || json.Unmarshal(b.raw, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
