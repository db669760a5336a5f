package federation

/*
#include <pthread.h>
#include <stdlib.h>
#include "federation.h"

// A waiter lets a goroutine wait for its call inside C: the completion callback signals the
// waiting thread directly, without entering Go on the library's worker thread.
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	federation_response_t *response;
	federation_error_t *error;
} federation_go_waiter_t;

static federation_go_waiter_t *federation_go_waiter_new(void) {
	federation_go_waiter_t *w = calloc(1, sizeof *w);
	if (w != NULL) {
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
	}
	return w;
}

static void federation_go_waiter_free(federation_go_waiter_t *w) {
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

// The completion callback of a waited-for call (runs on a library worker thread). The waiter
// is not touched after the unlock: the waiting thread frees it as soon as it sees done.
static void federation_go_wake(void *data, federation_response_t *response, federation_error_t *error) {
	federation_go_waiter_t *w = data;
	pthread_mutex_lock(&w->mu);
	w->response = response;
	w->error = error;
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

// Blocks until the call completed, hands over its outcome and frees the waiter.
static void federation_go_waiter_wait(federation_go_waiter_t *w, federation_response_t **response,
                                      federation_error_t **error) {
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	*response = w->response;
	*error = w->error;
	federation_go_waiter_free(w);
}
// federation_client_call completing to a new waiter written to *out_waiter (NULL when out of
// memory, and then nothing started and NULL is returned).
static federation_error_t *federation_go_call_waited(const federation_client_t *client, const char *service,
		const char *method, const char *path, const federation_header_t *headers, size_t headers_len,
		const uint8_t *body, size_t body_len, const federation_call_options_t *options,
		federation_go_waiter_t **out_waiter, federation_cancel_t **out_cancel) {
	federation_go_waiter_t *w = federation_go_waiter_new();
	*out_waiter = w;
	if (w == NULL) {
		return NULL;
	}
	federation_error_t *err = federation_client_call(client, service, method, path, headers, headers_len,
		body, body_len, options, federation_go_wake, w, out_cancel);
	if (err != NULL) {
		federation_go_waiter_free(w);
		*out_waiter = NULL;
	}
	return err;
}
*/
import "C"

import (
	"context"
	"unsafe"
)

// callWaited starts in completing to a new waiter stored in in.waiter (see start).
func callWaited(client *C.federation_client_t, in *encoded, cancel **C.federation_cancel_t) *C.federation_error_t {
	var w *C.federation_go_waiter_t
	err := C.federation_go_call_waited(client, in.service(), in.method(), in.path(),
		in.headersPtr(), C.size_t(len(in.headers)), in.bodyPtr(), C.size_t(len(in.body)),
		&in.options, &w, cancel)
	in.waiter = unsafe.Pointer(w)
	return err
}

// waitInC runs in as a call that waits inside C, blocking the goroutine's thread until the
// completion callback signals it directly.
func (c *Client) waitInC(ctx context.Context, service string, in *encoded) (w waited, err error) {
	w.id, w.cancel, err = c.start(service, in, false)
	if err != nil {
		return w, err
	}
	if in.waiter == nil {
		return w, newError(KindInternal, service, "out of memory")
	}
	var fired chan struct{}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		fired = make(chan struct{})
		cancel := w.cancel
		stop = context.AfterFunc(ctx, func() {
			C.federation_cancel_cancel(cancel)
			close(fired)
		})
	}
	C.federation_go_waiter_wait((*C.federation_go_waiter_t)(in.waiter), &w.out.response, &w.out.err)
	if !stop() {
		<-fired // the caller frees the cancel token: the cancelling function must be done with it
		w.ctxErr = ctx.Err()
	}
	return w, nil
}
