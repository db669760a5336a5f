// The queued path's C side. A call that has to wait is parked in one executor
// (federation_client_call_on) instead of continuing on a library worker thread: when a worker
// wakes it (its response arrived, a timer fired), it is queued there and, on an empty queue, the
// executor writes an eventfd that Go's network poller watches. One dispatcher goroutine then, in
// one cgo call, polls the woken calls on its own thread (their completion callbacks run there),
// takes the completed calls (filling each response's view) and hands each call to its
// goroutine, which copies the outcome from C memory without a cgo call; handed-back calls are
// freed in the dispatcher's next batch. So the library's workers only do the connections' I/O,
// a worker thread never enters the Go runtime (which can block it until a P is free), a busy
// process wakes Go once per batch, and a call costs one cgo transition of its own (its start).
// Completions that arrive from another thread (any path but the executor's) go through a
// lock-free list and the same eventfd.
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "glue.h"

void federation_go_view(const federation_response_t *r, federation_go_view_t *v) {
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
	                                   &v->tried_instance[v->tried_count]) &&
	       federation_response_attempt_timing(r, v->tried_count, &v->tried_timing[v->tried_count])) {
		v->tried_count++;
	}
}

static federation_go_call_t *federation_go_head;
static federation_go_call_t *federation_go_rest; // taken, not yet handed out (dispatcher only)
static int federation_go_fd = -1;
// Polls the calls that wait (federation_client_call_on): woken calls are queued there and the
// dispatcher polls them, so a call's completion runs on the dispatcher's thread.
static federation_executor_t *federation_go_executor;
// Set on the dispatcher's thread while it polls calls: their completions need no wake-up.
static __thread int federation_go_dispatching;

static void federation_go_wake(void) {
	uint64_t one = 1;
	ssize_t written = write(federation_go_fd, &one, sizeof one);
	(void)written; // fails only if the counter would overflow: a wake-up is pending anyway
}

// The executor's notify: a call was queued on an empty executor.
static void federation_go_notify(void *data) {
	(void)data;
	federation_go_wake();
}

int federation_go_queue_init(void) {
	federation_go_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (federation_go_fd < 0) {
		return -1;
	}
	federation_error_t *err = federation_executor_new(federation_go_notify, NULL, &federation_go_executor);
	if (err != NULL) {
		federation_error_free(err);
		close(federation_go_fd);
		federation_go_fd = -1;
		return -1;
	}
	return federation_go_fd;
}

// The call being started on this thread: a call completing inline (a cache hit, an immediate
// error) leaves its outcome in the node, and the starter takes it from there.
static __thread federation_go_call_t *federation_go_starting;

// The completion callback (runs on a library worker thread, or inline on the calling thread).
static void federation_go_enqueue(void *data, federation_response_t *response, federation_error_t *error) {
	federation_go_call_t *call = data;
	call->response = response;
	call->error = error;
	if (call == federation_go_starting) {
		call->inline_done = 1;
		return;
	}
	federation_go_call_t *old = __atomic_load_n(&federation_go_head, __ATOMIC_RELAXED);
	do {
		call->next = old;
	} while (!__atomic_compare_exchange_n(&federation_go_head, &old, call, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	if (old == NULL && !federation_go_dispatching) {
		// The dispatcher may be asleep: it takes the list only after a wake-up.
		federation_go_wake();
	}
}

federation_error_t *federation_go_start(const federation_client_t *client, uintptr_t req, uint64_t id,
		federation_go_call_t **out_call) {
	const federation_go_request_t *r = (const federation_go_request_t *)req;
	*out_call = NULL;
	federation_go_call_t *call = malloc(sizeof *call);
	if (call == NULL) {
		return NULL;
	}
	call->next = NULL;
	call->id = id;
	call->cancel = NULL;
	call->response = NULL;
	call->error = NULL;
	call->inline_done = 0;
	federation_go_starting = call;
	federation_error_t *err = federation_client_call_on(federation_go_executor, client, r->service, r->method,
		r->path, r->headers, r->headers_len, r->body, r->body_len, &r->options, federation_go_enqueue, call,
		&call->cancel);
	federation_go_starting = NULL;
	if (err != NULL) {
		free(call);
		return err;
	}
	if (call->inline_done && call->response != NULL) {
		federation_go_view(call->response, &call->view);
	}
	*out_call = call;
	return NULL;
}

federation_error_t *federation_go_call_blocking(const federation_client_t *client, uintptr_t req,
		const federation_cancel_t *cancel, federation_response_t **out_response) {
	const federation_go_request_t *r = (const federation_go_request_t *)req;
	return federation_client_call_blocking(client, r->service, r->method, r->path, r->headers, r->headers_len,
		r->body, r->body_len, &r->options, cancel, out_response);
}

federation_go_call_t *federation_go_taken[FEDERATION_GO_TAKE];

size_t federation_go_release_and_take(uintptr_t release, size_t n, int take, int *polled) {
	federation_go_call_t *const *calls = (federation_go_call_t *const *)release;
	for (size_t i = 0; i < n; i++) {
		federation_go_call_t *call = calls[i];
		federation_response_free(call->response);
		federation_error_free(call->error);
		federation_cancel_free(call->cancel);
		free(call);
	}
	if (!take) {
		return 0;
	}
	federation_go_dispatching = 1;
	*polled = (int)federation_executor_run(federation_go_executor, FEDERATION_GO_TAKE);
	federation_go_dispatching = 0;
	if (federation_go_rest == NULL) {
		federation_go_call_t *list = __atomic_exchange_n(&federation_go_head, NULL, __ATOMIC_ACQUIRE);
		federation_go_call_t *fifo = NULL;
		while (list != NULL) {
			federation_go_call_t *next = list->next;
			list->next = fifo;
			fifo = list;
			list = next;
		}
		federation_go_rest = fifo;
	}
	size_t taken = 0;
	while (federation_go_rest != NULL && taken < FEDERATION_GO_TAKE) {
		federation_go_call_t *call = federation_go_rest;
		federation_go_rest = call->next;
		if (call->response != NULL) {
			federation_go_view(call->response, &call->view);
		}
		federation_go_taken[taken++] = call;
	}
	return taken;
}
