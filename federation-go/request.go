package federation

/*
#include "federation.h"
*/
import "C"

import (
	"net/http"
	"time"
	"unsafe"
)

// Request is one call to a logical service. The zero value is a GET of "/".
type Request struct {
	// Method is the HTTP method; "" means GET.
	Method string
	// Path is the path and query, e.g. "/api/v1/users/42?full=1"; "" means "/".
	Path string
	// Header holds request headers (a traceparent or X-Federation-Deadline-Ms is honoured).
	Header http.Header
	// Body is sent as is; nil for none.
	Body []byte
	// Timeout is the total deadline across attempts; 0 uses the service's timeout.total. A
	// context deadline that comes earlier wins.
	Timeout time.Duration
	// AttemptTimeout is the per-attempt timeout; 0 uses the service's timeout.attempt.
	AttemptTimeout time.Duration
	// Idempotent overrides whether the request may be retried after reaching a server;
	// nil decides by method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE are idempotent).
	Idempotent *bool
	// Cluster sends only to this cluster (no failover); "" ranks clusters automatically.
	Cluster string
}

// Attempt is where one attempt of a call went.
type Attempt struct {
	// Cluster is the cluster of the instance.
	Cluster string
	// Instance is the instance id (as discovered: the Consul service id or the static id).
	Instance string
}

// CacheStatus says whether the SDK's cache served a call.
type CacheStatus string

// Cache statuses.
const (
	CacheHit     CacheStatus = "hit"
	CacheMiss    CacheStatus = "miss"
	CacheStale   CacheStatus = "stale"
	CacheBypass  CacheStatus = "bypass"
	CacheUnknown CacheStatus = "unknown"
)

// Response is the answer of a call and how it was served. A non-2xx status is a Response,
// not an error.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the whole body (already read).
	Body []byte
	// Cluster is the cluster that answered.
	Cluster string
	// Instance is the id of the instance that answered.
	Instance string
	// Attempts is how many attempts the call made (0 for a cache hit).
	Attempts int
	// Tried lists where each attempt went, in order (len(Tried) == Attempts).
	Tried []Attempt
	// Cache says whether the cache served the call.
	Cache CacheStatus
}

func cacheFromC(status C.federation_cache_status_t) CacheStatus {
	switch status {
	case C.FEDERATION_CACHE_HIT:
		return CacheHit
	case C.FEDERATION_CACHE_MISS:
		return CacheMiss
	case C.FEDERATION_CACHE_STALE:
		return CacheStale
	case C.FEDERATION_CACHE_BYPASS:
		return CacheBypass
	default:
		return CacheUnknown
	}
}

// takeResponse copies and frees a C response.
func takeResponse(r *C.federation_response_t) *Response {
	defer C.federation_response_free(r)
	var bodyLen C.size_t
	body := C.federation_response_body(r, &bodyLen)
	n := int(C.federation_response_header_count(r))
	header := make(http.Header, n)
	var h C.federation_header_t
	for i := range n {
		if !C.federation_response_header(r, C.size_t(i), &h) {
			break
		}
		name := C.GoStringN((*C.char)(unsafe.Pointer(h.name)), C.int(h.name_len))
		value := C.GoStringN((*C.char)(unsafe.Pointer(h.value)), C.int(h.value_len))
		key := http.CanonicalHeaderKey(name)
		header[key] = append(header[key], value)
	}
	resp := &Response{
		Status:   int(C.federation_response_status(r)),
		Header:   header,
		Cluster:  C.GoString(C.federation_response_cluster(r)),
		Instance: C.GoString(C.federation_response_instance(r)),
		Attempts: int(C.federation_response_attempts(r)),
		Cache:    cacheFromC(C.federation_response_cache(r)),
	}
	var cluster, instance *C.char
	for i := 0; C.federation_response_attempt(r, C.size_t(i), &cluster, &instance); i++ {
		resp.Tried = append(resp.Tried, Attempt{Cluster: C.GoString(cluster), Instance: C.GoString(instance)})
	}
	if bodyLen > 0 {
		resp.Body = C.GoBytes(unsafe.Pointer(body), C.int(bodyLen))
	} else {
		resp.Body = []byte{}
	}
	return resp
}
