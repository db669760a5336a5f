package federation

// Health is the client's view of every logical service in every cluster (the JSON of the
// core's health snapshot).
type Health struct {
	// Services has one entry per logical service, in configuration order.
	Services []ServiceHealth `json:"services"`
	// Config is the configuration generation the client runs (see Client.Reload).
	Config ConfigGeneration `json:"config"`
	// JSON is the snapshot as the core produced it.
	JSON string `json:"-"`
}

// ServiceHealth is one logical service across clusters.
type ServiceHealth struct {
	Service   string          `json:"service"`
	Preferred *string         `json:"preferred"`
	Selected  *string         `json:"selected"`
	Clusters  []ClusterHealth `json:"clusters"`
	// CacheL2 is the shared Redis tier (cache.l2), when configured.
	CacheL2 *L2Health `json:"cache_l2,omitempty"`
	// CacheWarm is the cache warm-up progress, once one started.
	CacheWarm *WarmHealth `json:"cache_warm,omitempty"`
	// Spill is the load-aware spill from the preferred cluster (the spill policy), when on.
	Spill *SpillHealth `json:"spill,omitempty"`
}

// SpillHealth is the load-aware spill of one service: the share of calls that goes to To
// first instead of the preferred cluster From, and why (loads, ratio, thresholds).
type SpillHealth struct {
	From   string   `json:"from"`
	To     *string  `json:"to"`
	Share  float64  `json:"share"`
	Ratio  *float64 `json:"ratio"`
	Reason string   `json:"reason"`
}

// L2Health is the shared Redis tier of one service's cache.
type L2Health struct {
	Target                string  `json:"target"`
	Connected             bool    `json:"connected"`
	Subscribed            bool    `json:"subscribed"`
	Degraded              bool    `json:"degraded"`
	DegradedSeconds       float64 `json:"degraded_seconds"`
	Hits                  uint64  `json:"hits"`
	Misses                uint64  `json:"misses"`
	Stored                uint64  `json:"stored"`
	Errors                uint64  `json:"errors"`
	Timeouts              uint64  `json:"timeouts"`
	Oversized             uint64  `json:"oversized"`
	LeasesWon             uint64  `json:"leases_won"`
	LeasesWaited          uint64  `json:"leases_waited"`
	InvalidationsSent     uint64  `json:"invalidations_sent"`
	InvalidationsReceived uint64  `json:"invalidations_received"`
	Resyncs               uint64  `json:"resyncs"`
}

// WarmHealth is the progress of one service's cache warm-ups.
type WarmHealth struct {
	Planned  uint64 `json:"planned"`
	Fetched  uint64 `json:"fetched"`
	Failed   uint64 `json:"failed"`
	InFlight uint64 `json:"in_flight"`
}

// ClusterHealth is one logical service in one cluster.
type ClusterHealth struct {
	Cluster       string           `json:"cluster"`
	ConsulService string           `json:"consul_service"`
	Discovered    int              `json:"discovered"`
	Available     int              `json:"available"`
	Ejected       int              `json:"ejected"`
	Instances     []InstanceHealth `json:"instances"`
	Score         float64          `json:"score"`
	LastSuccess   *float64         `json:"last_success"`
	Stale         bool             `json:"stale"`
	LastError     *string          `json:"last_error"`
}

// InstanceHealth is one instance as the client sees it.
type InstanceHealth struct {
	ID       string  `json:"id"`
	Address  string  `json:"address"`
	Health   string  `json:"health"`
	Breaker  string  `json:"breaker"`
	InFlight uint64  `json:"in_flight"`
	EwmaMs   float64 `json:"ewma_ms"`
}

// Service is the entry of logical service name, or nil.
func (h *Health) Service(name string) *ServiceHealth {
	for i := range h.Services {
		if h.Services[i].Service == name {
			return &h.Services[i]
		}
	}
	return nil
}
