package federation

import (
	"encoding/json"
	"errors"
)

// The data sync's values, as the core encodes them (JSON). An EntityState keeps the exact JSON
// it was decoded from, so a service that stores it (json.Marshal) and hands it back later
// (Change.Base, SyncTarget.Stamp) round-trips every field the core needs (seen clocks,
// concurrent heads, field stamps), including ones this package does not decode.

// Operation is what a change does to its entity.
type Operation string

// Operations.
const (
	Create Operation = "create"
	Update Operation = "update"
	Delete Operation = "delete"
)

// HLC is a hybrid logical clock timestamp: wall milliseconds plus a logical counter.
type HLC struct {
	WallMs  uint64 `json:"wall_ms"`
	Logical uint32 `json:"logical"`
}

// Stamp identifies one change: event id, origin cluster and timestamp.
type Stamp struct {
	EventID string `json:"event_id"`
	Origin  string `json:"origin"`
	HLC     HLC    `json:"hlc"`
}

// Change is a change to publish.
type Change struct {
	// EntityType is a type configured under sync.entities (user, resume, company, ...).
	EntityType string
	// EntityID is the entity's id within its type.
	EntityID string
	// Operation is Create, Update or Delete.
	Operation Operation
	// Data is the record (ignored for deletes).
	Data map[string]any
	// Base is the state the writer based the change on, as stored with its record (nil: none
	// stored).
	Base *EntityState
}

// EntityState is what a service stores next to each synced record: the record and its sync
// stamp. Store it whole (json.Marshal gives the core's exact JSON) and return it from
// SyncTarget.Stamp and as Change.Base.
type EntityState struct {
	// Data is the record; nil while the entity is deleted (a tombstone).
	Data map[string]any
	// Version is the stamp of the change that produced the record.
	Version Stamp

	raw json.RawMessage
}

type entityStateFields struct {
	Data    map[string]any `json:"data"`
	Version Stamp          `json:"version"`
}

// Deleted says whether the entity is a tombstone.
func (s *EntityState) Deleted() bool { return s.Data == nil }

// MarshalJSON gives the state exactly as the core encoded it.
func (s EntityState) MarshalJSON() ([]byte, error) {
	if len(s.raw) == 0 {
		return nil, errors.New("federation: an EntityState must come from the sync (Published.State, AppliedChange.State or json.Unmarshal of a stored one)")
	}
	return s.raw, nil
}

// UnmarshalJSON reads a state stored earlier.
func (s *EntityState) UnmarshalJSON(text []byte) error {
	var fields entityStateFields
	if err := json.Unmarshal(text, &fields); err != nil {
		return err
	}
	s.Data, s.Version = fields.Data, fields.Version
	s.raw = append(json.RawMessage(nil), text...)
	return nil
}

// ChangeEvent is one stamped change as published.
type ChangeEvent struct {
	EntityType string         `json:"entity_type"`
	EntityID   string         `json:"entity_id"`
	Operation  Operation      `json:"operation"`
	Data       map[string]any `json:"data"`
	// Base is the version the writer based the change on (nil: none).
	Base *Stamp `json:"base"`
	// Stamp is this change's stamp.
	Stamp Stamp `json:"stamp"`
	// PublishedAtMs is the origin's wall clock at publish (ms since the epoch).
	PublishedAtMs uint64 `json:"published_at_ms"`
}

// Published is a change the broker acknowledged durably.
type Published struct {
	// Stamp is the change's stamp.
	Stamp Stamp `json:"stamp"`
	// Event is the change as sent.
	Event ChangeEvent `json:"event"`
	// State is the entity's state after the change: store it with the record and pass it as
	// the next change's Base.
	State *EntityState `json:"state"`
	// Partition and Offset are where the broker stored it.
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`

	eventRaw json.RawMessage // the event exactly as the core encoded it (for ApplyLocal)
}

// UnmarshalJSON reads a published change, keeping its event's exact JSON.
func (p *Published) UnmarshalJSON(text []byte) error {
	type fields Published // the same fields without this method
	var f fields
	if err := json.Unmarshal(text, &f); err != nil {
		return err
	}
	var raw struct {
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(text, &raw); err != nil {
		return err
	}
	*p = Published(f)
	p.eventRaw = raw.Event
	return nil
}

// Effect is what a received change did.
type Effect string

// Effects of a change written to a target.
const (
	// Applied: the change is now the record.
	Applied Effect = "applied"
	// Merged: the record combines the change with what was stored.
	Merged Effect = "merged"
	// Superseded: the stored version won; the change is only recorded as seen.
	Superseded Effect = "superseded"
)

// AppliedChange is a change the subscriber decided to write to a SyncTarget.
type AppliedChange struct {
	// Event is the change that caused it.
	Event ChangeEvent `json:"event"`
	// Effect says what the change did.
	Effect Effect `json:"effect"`
	// State is the entity's new state: store it whole, next to (or as) the record.
	State *EntityState `json:"state"`
	// Previous is the state the decision was made from (nil: nothing stored). Write only if
	// the stored state is still this one; else return ErrStale.
	Previous *EntityState `json:"previous"`
}

// SyncStatus is the status of the latest change of an entity published from this cluster.
type SyncStatus struct {
	EventID string `json:"event_id"`
	HLC     HLC    `json:"hlc"`
	// Targets is the state in each other cluster.
	Targets map[string]TargetStatus `json:"targets"`
	// Overall is "failed" if any target failed, else "pending" if any is pending, else
	// "completed".
	Overall string `json:"overall"`
}

// TargetStatus is the state of one change in one cluster.
type TargetStatus struct {
	// State is "pending", "completed" or "failed".
	State string `json:"state"`
	// Effect is what the change did there (completed only).
	Effect string `json:"effect,omitempty"`
	// Reason is why it failed (failed only).
	Reason string `json:"reason,omitempty"`
}

// SyncHealth is the sync's health entry.
type SyncHealth struct {
	LocalCluster string                  `json:"local_cluster"`
	Origins      map[string]OriginHealth `json:"origins"`
	// Pending counts entities whose latest published change is still pending somewhere.
	Pending int  `json:"pending"`
	Healthy bool `json:"healthy"`
}

// OriginHealth is the health of consuming one other cluster's changes.
type OriginHealth struct {
	Consumed       uint64  `json:"consumed"`
	LastConsumedMs *uint64 `json:"last_consumed_ms"`
	// Lag is the number of messages not yet consumed (-1: unknown).
	Lag       int64   `json:"lag"`
	LastError *string `json:"last_error"`
}
