package federation

// Health is the client's view of every logical service in every cluster (the JSON of the
// core's health snapshot).
type Health struct {
	// Services has one entry per logical service, in configuration order.
	Services []ServiceHealth `json:"services"`
	// JSON is the snapshot as the core produced it.
	JSON string `json:"-"`
}

// ServiceHealth is one logical service across clusters.
type ServiceHealth struct {
	Service   string          `json:"service"`
	Preferred *string         `json:"preferred"`
	Selected  *string         `json:"selected"`
	Clusters  []ClusterHealth `json:"clusters"`
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
