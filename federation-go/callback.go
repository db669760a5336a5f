package federation

/*
#include "glue.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// pending is one call in flight: the dispatcher finds a queued call's goroutine through it,
// and Close finds the cancel tokens of its client's calls.
type pending struct {
	client *Client
	done   chan *C.federation_go_call_t // queued calls only
	cancel *C.federation_cancel_t       // set once the call started; guarded by its shard's mu
}

// The registry of calls in flight, in shards so that a thousand goroutines starting and
// finishing calls rarely meet on one lock. A call's id is its key and, for a queued call, the
// user data the C glue hands back with the completion.
const registryShards = 64

type registryShard struct {
	mu    sync.Mutex
	calls map[uint64]*pending
	_     [48]byte // one shard per cache line
}

var (
	registry   [registryShards]registryShard
	lastCallID atomic.Uint64
)

func shardOf(id uint64) *registryShard { return &registry[id%registryShards] }

// registerCall records p (not yet started) and returns its id.
func registerCall(p *pending) uint64 {
	id := lastCallID.Add(1)
	s := shardOf(id)
	s.mu.Lock()
	if s.calls == nil {
		s.calls = make(map[uint64]*pending)
	}
	s.calls[id] = p
	s.mu.Unlock()
	return id
}

// started records the call's cancel token so that Close can cancel it; once Close has begun,
// the token is cancelled right away. The token must stay valid until the call is taken out of
// the registry.
func (p *pending) started(id uint64, cancel *C.federation_cancel_t) {
	s := shardOf(id)
	s.mu.Lock()
	p.cancel = cancel
	if p.client.closedFlag.Load() {
		C.federation_cancel_cancel(cancel)
	}
	s.mu.Unlock()
}

// takeCall removes and returns the call registered under id (nil if there is none).
func takeCall(id uint64) *pending {
	s := shardOf(id)
	s.mu.Lock()
	p := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	return p
}

func forgetCall(id uint64) { takeCall(id) }

// cancelCalls cancels every started call of client c in flight.
func cancelCalls(c *Client) {
	for i := range registry {
		s := &registry[i]
		s.mu.Lock()
		for _, p := range s.calls {
			if p.client == c && p.cancel != nil {
				C.federation_cancel_cancel(p.cancel)
			}
		}
		s.mu.Unlock()
	}
}
