package federation

/*
#include "federation.h"

enum { FEDERATION_GO_HEADERS = 32, FEDERATION_GO_ATTEMPTS = 8 };

// Everything Go copies out of a response, gathered in one cgo call instead of one per field
// (each cgo call costs a scheduler transition; a response has a dozen fields). Headers and
// attempts beyond the arrays are read one by one.
typedef struct {
	uint16_t status;
	uint32_t attempts;
	federation_cache_status_t cache;
	const uint8_t *body;
	size_t body_len;
	const char *cluster;
	const char *instance;
	size_t header_count;
	federation_header_t headers[FEDERATION_GO_HEADERS];
	size_t tried_count;
	const char *tried_cluster[FEDERATION_GO_ATTEMPTS];
	const char *tried_instance[FEDERATION_GO_ATTEMPTS];
} federation_go_view_t;

static void federation_go_view(const federation_response_t *r, federation_go_view_t *v) {
	v->status = federation_response_status(r);
	v->attempts = federation_response_attempts(r);
	v->cache = federation_response_cache(r);
	v->body = federation_response_body(r, &v->body_len);
	v->cluster = federation_response_cluster(r);
	v->instance = federation_response_instance(r);
	v->header_count = federation_response_header_count(r);
	for (size_t i = 0; i < v->header_count && i < FEDERATION_GO_HEADERS; i++) {
		if (!federation_response_header(r, i, &v->headers[i])) {
			v->header_count = i;
			break;
		}
	}
	v->tried_count = 0;
	while (v->tried_count < FEDERATION_GO_ATTEMPTS &&
	       federation_response_attempt(r, v->tried_count, &v->tried_cluster[v->tried_count],
	                                   &v->tried_instance[v->tried_count])) {
		v->tried_count++;
	}
}
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
	var v C.federation_go_view_t
	C.federation_go_view(r, &v)
	n := int(v.header_count)
	header := make(http.Header, n)
	var h C.federation_header_t
	for i := range n {
		if i < len(v.headers) {
			h = v.headers[i]
		} else if !C.federation_response_header(r, C.size_t(i), &h) {
			break
		}
		name := C.GoStringN((*C.char)(unsafe.Pointer(h.name)), C.int(h.name_len))
		value := C.GoStringN((*C.char)(unsafe.Pointer(h.value)), C.int(h.value_len))
		key := http.CanonicalHeaderKey(name)
		header[key] = append(header[key], value)
	}
	resp := &Response{
		Status:   int(v.status),
		Header:   header,
		Cluster:  C.GoString(v.cluster),
		Instance: C.GoString(v.instance),
		Attempts: int(v.attempts),
		Cache:    cacheFromC(v.cache),
	}
	if v.tried_count > 0 {
		resp.Tried = make([]Attempt, 0, int(v.attempts))
	}
	for i := range int(v.tried_count) {
		resp.Tried = append(resp.Tried, Attempt{Cluster: C.GoString(v.tried_cluster[i]), Instance: C.GoString(v.tried_instance[i])})
	}
	if int(v.tried_count) == len(v.tried_cluster) {
		var cluster, instance *C.char
		for i := len(v.tried_cluster); C.federation_response_attempt(r, C.size_t(i), &cluster, &instance); i++ {
			resp.Tried = append(resp.Tried, Attempt{Cluster: C.GoString(cluster), Instance: C.GoString(instance)})
		}
	}
	if v.body_len > 0 {
		resp.Body = C.GoBytes(unsafe.Pointer(v.body), C.int(v.body_len))
	} else {
		resp.Body = []byte{}
	}
	return resp
}
