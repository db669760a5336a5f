// C glue between the Go package and the C ABI (implemented in glue.c). Go reads these structs
// directly: a call's whole outcome is laid out here in C memory, so copying it into Go takes
// no cgo call.
#ifndef FEDERATION_GO_GLUE_H
#define FEDERATION_GO_GLUE_H

#include <stddef.h>
#include <stdint.h>
#include "federation.h"

enum { FEDERATION_GO_HEADERS = 32, FEDERATION_GO_ATTEMPTS = 8 };

// Everything Go copies out of a response. Headers and attempts beyond the arrays are read one
// by one (with a cgo call each).
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
	federation_attempt_timing_t tried_timing[FEDERATION_GO_ATTEMPTS];
} federation_go_view_t;

// Fills v from r (the pointers in v live as long as r).
void federation_go_view(const federation_response_t *r, federation_go_view_t *v);

// A request as Go lays it out: every pointer is into pinned Go memory.
typedef struct {
	const char *service;
	const char *method;
	const char *path;
	const federation_header_t *headers;
	size_t headers_len;
	const uint8_t *body;
	size_t body_len;
	federation_call_options_t options;
} federation_go_request_t;

// One call completing through the queue. C memory, allocated when the call starts and freed
// (with the response and the cancel token) once Go has copied the outcome out: see
// federation_go_release.
typedef struct federation_go_call {
	struct federation_go_call *next;
	uint64_t id;                     // the Go registry's key of the waiting goroutine
	federation_cancel_t *cancel;     // the call's cancel token
	federation_response_t *response; // exactly one of response and error once completed
	federation_error_t *error;       // owned by Go once delivered (takeError frees it)
	int inline_done;                 // completed inside federation_go_start: not queued
	federation_go_view_t view;       // filled from response before Go sees the call
} federation_go_call_t;

// Creates the completion eventfd (nonblocking, so Go's network poller watches it) and the
// executor that parks waiting calls; returns the eventfd, or -1 on failure.
int federation_go_queue_init(void);

// Starts a call completing through the queue. A call that waits is polled by the dispatcher
// (federation_client_call_on), not by a library worker. req is a federation_go_request_t in pinned Go
// memory, passed as an integer so that cgo does not re-check its pinned pointers on every call.
// Returns the C ABI's error (nothing started) or NULL with *out_call set; *out_call is NULL
// when out of memory. A call that completed while starting has inline_done set and is not
// queued.
federation_error_t *federation_go_start(const federation_client_t *client, uintptr_t req, uint64_t id,
	federation_go_call_t **out_call);

// federation_client_call_blocking for a federation_go_request_t (see federation_go_start).
federation_error_t *federation_go_call_blocking(const federation_client_t *client, uintptr_t req,
	const federation_cancel_t *cancel, federation_response_t **out_response);

// How many completed calls the dispatcher takes at once.
enum { FEDERATION_GO_TAKE = 256 };

// Where federation_go_release_and_take puts the calls it takes (C memory: Go reads it without
// cgo checking each pointer). Only the dispatcher uses it.
extern federation_go_call_t *federation_go_taken[FEDERATION_GO_TAKE];

// Frees the n calls at release (their responses, cancel tokens and remaining errors); then, if
// take is nonzero, polls up to FEDERATION_GO_TAKE woken calls (writing how many to *polled),
// moves up to FEDERATION_GO_TAKE completed calls, oldest first, to federation_go_taken and
// returns how many. release is the address of an array of call pointers in pinned Go memory,
// passed as an integer like federation_go_start's request. Only the dispatcher passes a nonzero
// take.
size_t federation_go_release_and_take(uintptr_t release, size_t n, int take, int *polled);

#endif
