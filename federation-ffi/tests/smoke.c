/* C smoke test of the federation C ABI, linked against the static library.
 *
 * Starts the testkit sandbox, builds a client from its YAML configuration, makes calls that
 * succeed, fail over, fail with each kind of invalid input, and get cancelled, then frees
 * everything (run under valgrind in CI: zero leaks and errors). Exits non-zero on the first
 * failed check. Build and run: scripts/ffi-go-test.sh. */
#define _POSIX_C_SOURCE 200809L
#define FEDERATION_TESTKIT 1
#include "federation.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Fails the test when err is not NULL, printing its message; frees it. */
static int ok(federation_error_t *err, const char *what) {
    if (err == NULL) return 1;
    fprintf(stderr, "FAIL %s: kind %u: %s\n", what, federation_error_kind(err), federation_error_message(err));
    federation_error_free(err);
    failures++;
    return 0;
}

/* One call's completion, waited for with a condition variable. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    federation_response_t *response;
    federation_error_t *error;
} completion_t;

static void completion_init(completion_t *c) {
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->done = 0;
    c->response = NULL;
    c->error = NULL;
}

static void completion_destroy(completion_t *c) {
    federation_response_free(c->response);
    federation_error_free(c->error);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static void on_done(void *user_data, federation_response_t *response, federation_error_t *error) {
    completion_t *c = user_data;
    pthread_mutex_lock(&c->mu);
    c->response = response;
    c->error = error;
    c->done++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_done(completion_t *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->done) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* GET path on service; waits; the caller owns c (init'ed here, destroy it). */
static void get(federation_client_t *client, const char *service, const char *path,
                const federation_call_options_t *options, completion_t *c) {
    completion_init(c);
    const char *trace = "smoke";
    federation_header_t headers[1] = {
        {(const uint8_t *)"x-smoke", 7, (const uint8_t *)trace, strlen(trace)}};
    if (!ok(federation_client_call(client, service, "GET", path, headers, 1, NULL, 0, options,
                                   on_done, c, NULL),
            "start call")) {
        c->done = 1;
        return;
    }
    wait_done(c);
}

/* The executor's notify: counts wake-ups (runs on a library worker). */
static void on_notify(void *user_data) {
    __atomic_add_fetch((int *)user_data, 1, __ATOMIC_SEQ_CST);
}

/* Runs the executor on this thread until c completes (polling; a host would sleep until
 * notified). Returns how many calls it polled. */
static size_t run_until_done(federation_executor_t *executor, completion_t *c) {
    size_t polled = 0;
    for (int i = 0; i < 5000; i++) {
        polled += federation_executor_run(executor, 16);
        pthread_mutex_lock(&c->mu);
        int done = c->done;
        pthread_mutex_unlock(&c->mu);
        if (done) break;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    return polled;
}

/* A blocking GET of the user service, made on its own thread. */
typedef struct {
    federation_client_t *client;
    federation_response_t *response;
    federation_error_t *error;
} blocking_t;

static void *blocking_get(void *arg) {
    blocking_t *b = arg;
    b->error = federation_client_call_blocking(b->client, "user", "GET", "/api/v1/users/42", NULL, 0, NULL, 0,
                                               NULL, NULL, &b->response);
    return NULL;
}

/* Cancels the token after 100 ms. */
static void *cancel_soon(void *arg) {
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    federation_cancel_cancel(arg);
    return NULL;
}

/* A federation_sync_new completion. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    federation_sync_t *sync;
    federation_error_t *error;
} sync_done_t;

static void on_sync(void *user_data, federation_sync_t *sync, federation_error_t *error) {
    sync_done_t *d = user_data;
    pthread_mutex_lock(&d->mu);
    d->done++;
    d->sync = sync;
    d->error = error;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void on_text(void *user_data, federation_string_t *text, federation_error_t *error) {
    (void)user_data;
    federation_string_free(text);
    federation_error_free(error);
}

/* Starts federation_sync_new on config and checks it completes with an error of kind `kind`
 * whose message contains `needle`. */
static void sync_new_fails(const char *config, federation_error_kind_t kind, const char *needle) {
    sync_done_t d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, NULL};
    federation_cancel_t *token = NULL;
    if (!ok(federation_sync_new(config, FEDERATION_CONFIG_YAML, NULL, on_sync, &d, &token), "sync new")) return;
    pthread_mutex_lock(&d.mu);
    while (!d.done) pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    CHECK(d.sync == NULL && d.error != NULL, "sync new should fail");
    CHECK(federation_error_kind(d.error) == kind && strstr(federation_error_message(d.error), needle) != NULL,
          "kind %u: %s", federation_error_kind(d.error), federation_error_message(d.error));
    federation_error_free(d.error);
    federation_cancel_free(token);
}

/* The data sync's C ABI without a broker: invalid input is an error naming the argument, a
 * configuration problem completes through the callback. */
static void sync_checks(void) {
    federation_error_t *e = federation_sync_new("clusters: {}", FEDERATION_CONFIG_YAML, NULL, NULL, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST &&
              strstr(federation_error_message(e), "`callback` is NULL") != NULL,
          "NULL callback: %s", federation_error_message(e));
    federation_error_free(e);
    e = federation_sync_new(NULL, FEDERATION_CONFIG_YAML, NULL, on_sync, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CONFIG, "NULL config");
    federation_error_free(e);
    e = federation_sync_publish(NULL, "{}", 0, on_text, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST &&
              strstr(federation_error_message(e), "`sync` is NULL") != NULL,
          "NULL sync: %s", federation_error_message(e));
    federation_error_free(e);
    federation_string_t *text = NULL;
    e = federation_sync_status(NULL, "user", "1", &text);
    CHECK(e != NULL && text == NULL, "status of NULL");
    federation_error_free(e);
    e = federation_sync_reply(NULL, FEDERATION_SYNC_REPLY_OK, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "reply to NULL");
    federation_error_free(e);
    federation_sync_subscription_free(NULL);
    federation_sync_free(NULL);

    sync_new_fails("clusters:\n  a: { static: { svc: [{ address: 127.0.0.1, port: 1 }] } }\n",
                   FEDERATION_ERROR_CONFIG, "no `sync` section");
    /* (Cancelling a build that already created Kafka clients is checked by the Go tests, not
     * here: librdkafka's clients still being torn down at exit show up as lost blocks.) */
}

int main(void) {
    CHECK(federation_runtime_threads() >= 3, "runtime threads: %u", federation_runtime_threads());

    /* Generous check timeout: under valgrind a check can take long enough to fail. */
    federation_sandbox_options_t sandbox_options = {2, 300, 10000, false};
    federation_sandbox_t *sandbox = NULL;
    if (!ok(federation_sandbox_start(&sandbox_options, &sandbox), "sandbox start")) return 1;
    federation_string_t *yaml = NULL;
    if (!ok(federation_sandbox_config_yaml(sandbox, &yaml), "sandbox config")) return 1;

    federation_client_t *client = NULL;
    if (!ok(federation_client_new(federation_string_data(yaml, NULL), FEDERATION_CONFIG_YAML, &client),
            "client new"))
        return 1;

    /* 1. A plain call is served by the preferred cluster once discovery has answered (a new
     * client has no instances until its first Consul response; a call made while only looma
     * has answered goes there). */
    completion_t c;
    for (int i = 0; i < 1500; i++) {
        get(client, "user", "/api/v1/users/42", NULL, &c);
        if (c.error == NULL && strcmp(federation_response_cluster(c.response), "zervigo") == 0) break;
        completion_destroy(&c);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    CHECK(c.error == NULL, "call failed: %s", federation_error_message(c.error));
    CHECK(federation_response_status(c.response) == 200, "status %u", federation_response_status(c.response));
    CHECK(strcmp(federation_response_cluster(c.response), "zervigo") == 0, "cluster %s",
          federation_response_cluster(c.response));
    CHECK(federation_response_attempts(c.response) >= 1, "attempts");
    size_t body_len = 0;
    const uint8_t *body = federation_response_body(c.response, &body_len);
    CHECK(body != NULL && body_len > 0, "empty body");
    CHECK(federation_response_header_count(c.response) > 0, "no headers");
    federation_header_t h;
    CHECK(federation_response_header(c.response, 0, &h) && h.name_len > 0, "header 0");
    CHECK(!federation_response_header(c.response, 100000, &h), "header out of range");
    completion_destroy(&c);

    /* 2. Every zervigo user-service instance killed: the call fails over to looma. */
    ok(federation_sandbox_kill(sandbox, "zervigo", "user-service", -1), "kill");
    /* Under valgrind a call can spend its attempts in zervigo before the dead instances are
     * ejected; the next calls go to looma. */
    for (int i = 0; i < 20; i++) {
        get(client, "user", "/api/v1/users/42", NULL, &c);
        if (c.error == NULL) break;
        fprintf(stderr, "note: call %d after the kill failed: %s\n", i, federation_error_message(c.error));
        completion_destroy(&c);
    }
    CHECK(c.error == NULL, "failover call failed: %s", federation_error_message(c.error));
    CHECK(strcmp(federation_response_cluster(c.response), "looma") == 0, "failover cluster %s",
          federation_response_cluster(c.response));
    completion_destroy(&c);
    ok(federation_sandbox_restart(sandbox, "zervigo", "user-service", -1), "restart");

    /* Hot reload: a valid configuration becomes generation 2; an invalid one is rejected with
     * a CONFIG error and generation 2 stays (health's `config` object shows both). */
    ok(federation_client_reload(client, federation_string_data(yaml, NULL), FEDERATION_CONFIG_YAML),
       "reload");
    federation_error_t *rejected = federation_client_reload(client, "clusters: 42\n", FEDERATION_CONFIG_YAML);
    CHECK(rejected != NULL && federation_error_kind(rejected) == FEDERATION_ERROR_CONFIG, "invalid reload");
    federation_error_free(rejected);
    federation_string_free(yaml);

    /* Health (JSON) and metrics (Prometheus text) are owned strings. */
    federation_string_t *text = NULL;
    if (ok(federation_client_health(client, &text), "health")) {
        size_t len = 0;
        const char *json = federation_string_data(text, &len);
        CHECK(len > 0 && strstr(json, "\"services\"") != NULL, "health: %s", json);
        CHECK(strstr(json, "\"generation\": 2") != NULL, "generation 2 in health: %s", json);
        federation_string_free(text);
    }
    if (ok(federation_client_metrics(client, &text), "metrics")) {
        CHECK(strstr(federation_string_data(text, NULL), "federation_") != NULL, "metrics");
        federation_string_free(text);
    }

    /* 3. Errors reported through the callback carry a kind and a message. */
    get(client, "no-such-service", "/", NULL, &c);
    CHECK(federation_error_kind(c.error) == FEDERATION_ERROR_INVALID_REQUEST, "kind %u",
          federation_error_kind(c.error));
    CHECK(strlen(federation_error_message(c.error)) > 0, "empty message");
    completion_destroy(&c);

    /* 4. A hanging upstream and a short deadline: timeout. */
    ok(federation_sandbox_set_behavior(sandbox, "looma", "resume-processing", -1, 0, 0,
                                       FEDERATION_SANDBOX_MODE_HANG),
       "hang");
    federation_call_options_t options = {300, 0, -1, NULL, NULL, 0};
    get(client, "resume-processing", "/process", &options, &c);
    CHECK(federation_error_kind(c.error) == FEDERATION_ERROR_TIMEOUT, "kind %u: %s",
          federation_error_kind(c.error), federation_error_message(c.error));
    completion_destroy(&c);

    /* 5. Cancelling a hanging call completes it with CANCELLED. */
    completion_init(&c);
    federation_cancel_t *cancel = NULL;
    ok(federation_client_call(client, "resume-processing", "GET", "/process", NULL, 0, NULL, 0, NULL,
                              on_done, &c, &cancel),
       "start cancellable call");
    federation_cancel_cancel(cancel);
    wait_done(&c);
    CHECK(federation_error_kind(c.error) == FEDERATION_ERROR_CANCELLED, "kind %u",
          federation_error_kind(c.error));
    federation_cancel_cancel(cancel); /* after completion: no effect */
    federation_cancel_free(cancel);
    completion_destroy(&c);

    federation_error_t *e;
    /* 5b. Blocking calls driven by the calling thread: a call on a worker thread of ours that
     * exits afterwards (its per-thread state must be released: valgrind), a timeout, and a
     * cancellation from another thread. */
    pthread_t caller;
    blocking_t b = {client, NULL, NULL};
    CHECK(pthread_create(&caller, NULL, blocking_get, &b) == 0, "pthread_create");
    pthread_join(caller, NULL);
    CHECK(b.error == NULL, "blocking call failed: %s", federation_error_message(b.error));
    CHECK(b.response != NULL && federation_response_status(b.response) == 200, "blocking status");
    federation_response_free(b.response);
    federation_error_free(b.error);
    federation_response_t *response = NULL;
    e = federation_client_call_blocking(client, "resume-processing", "GET", "/process", NULL, 0, NULL, 0,
                                        &options, NULL, &response);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_TIMEOUT && response == NULL, "blocking timeout: %u",
          federation_error_kind(e));
    federation_error_free(e);
    cancel = federation_cancel_new();
    pthread_t canceller;
    CHECK(pthread_create(&canceller, NULL, cancel_soon, cancel) == 0, "pthread_create");
    e = federation_client_call_blocking(client, "resume-processing", "GET", "/process", NULL, 0, NULL, 0, NULL,
                                        cancel, &response);
    pthread_join(canceller, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CANCELLED, "blocking cancel: %u", federation_error_kind(e));
    federation_error_free(e);
    federation_cancel_free(cancel);
    e = federation_client_call_blocking(client, "user", "GET", "/", NULL, 0, NULL, 0, NULL, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL out_response");
    federation_error_free(e);

    /* 5c. A call polled by an executor this thread runs: it waits for its response, is woken
     * (notify), and completes on this thread inside federation_executor_run. */
    int notified = 0;
    federation_executor_t *executor = NULL;
    if (ok(federation_executor_new(on_notify, &notified, &executor), "executor")) {
        completion_t ce;
        completion_init(&ce);
        if (ok(federation_client_call_on(executor, client, "user", "GET", "/api/v1/users/42", NULL, 0, NULL, 0,
                                         NULL, on_done, &ce, NULL),
               "call on executor")) {
            size_t polled = run_until_done(executor, &ce);
            CHECK(ce.done == 1 && ce.response != NULL && federation_response_status(ce.response) == 200,
                  "executor call: done %d", ce.done);
            CHECK(polled >= 1 && __atomic_load_n(&notified, __ATOMIC_SEQ_CST) >= 1,
                  "executor polled %zu, notified %d", polled, notified);
        }
        completion_destroy(&ce);
        CHECK(federation_executor_run(executor, 16) == 0, "nothing left to poll");
        e = federation_client_call_on(NULL, client, "user", "GET", "/", NULL, 0, NULL, 0, NULL, on_done, NULL,
                                      NULL);
        CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL executor");
        federation_error_free(e);
        federation_executor_free(executor);
    }
    e = federation_executor_new(NULL, NULL, &executor);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL notify");
    federation_error_free(e);
    CHECK(federation_executor_run(NULL, 16) == 0, "NULL executor runs nothing");

    /* 6. Invalid input is an error returned at once; the callback never runs. */
    e = federation_client_call(NULL, "user", "GET", "/", NULL, 0, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL client");
    federation_error_free(e);
    e = federation_client_call(client, "user", "GET", "/", NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL callback");
    federation_error_free(e);
    e = federation_client_call(client, "us\xff\xfe", "GET", "/", NULL, 0, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "invalid UTF-8");
    CHECK(strstr(federation_error_message(e), "UTF-8") != NULL, "message: %s", federation_error_message(e));
    federation_error_free(e);
    e = federation_client_call(client, "user", "GET", "/", NULL, 3, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "NULL headers with length");
    federation_error_free(e);
    char *huge = malloc(70000);
    memset(huge, 'a', 69999);
    huge[69999] = 0;
    huge[0] = '/';
    e = federation_client_call(client, "user", "GET", huge, NULL, 0, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "oversized path");
    federation_error_free(e);
    free(huge);
    federation_header_t bad_header = {(const uint8_t *)"bad name", 8, (const uint8_t *)"v", 1};
    e = federation_client_call(client, "user", "GET", "/", &bad_header, 1, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "bad header name");
    federation_error_free(e);
    e = federation_client_call(client, "user", "G E T", "/", NULL, 0, NULL, 0, NULL, on_done, NULL, NULL);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_INVALID_REQUEST, "bad method");
    federation_error_free(e);

    /* 7. Configuration errors. */
    federation_client_t *other = NULL;
    e = federation_client_new("clusters: {}\nservices: { user: { prefr: x } }", FEDERATION_CONFIG_YAML, &other);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CONFIG && other == NULL, "bad config");
    federation_error_free(e);
    e = federation_client_new("{}", 99, &other);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CONFIG, "bad format");
    federation_error_free(e);
    e = federation_client_new(NULL, FEDERATION_CONFIG_JSON, &other);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CONFIG, "NULL config");
    federation_error_free(e);
    e = federation_client_new_from_file("/nonexistent/federation.yaml", &other);
    CHECK(federation_error_kind(e) == FEDERATION_ERROR_CONFIG, "missing file");
    federation_error_free(e);

    /* 8. NULL handles are harmless for accessors and frees. */
    CHECK(federation_response_status(NULL) == 0, "status of NULL");
    CHECK(federation_error_message(NULL) != NULL, "message of NULL");
    CHECK(federation_string_data(NULL, NULL) == NULL, "data of NULL");
    federation_response_free(NULL);
    federation_error_free(NULL);
    federation_cancel_free(NULL);
    federation_string_free(NULL);
    federation_client_free(NULL);

    /* 9. Freeing the client while a call is in flight: the call still completes. */
    completion_init(&c);
    ok(federation_client_call(client, "resume-processing", "GET", "/process", NULL, 0, NULL, 0,
                              &options, on_done, &c, NULL),
       "start in-flight call");
    federation_client_free(client);
    wait_done(&c);
    CHECK(c.done == 1 && (c.response != NULL) != (c.error != NULL), "exactly one outcome");
    completion_destroy(&c);

    /* 10. The data sync's entry points (no broker needed). */
    sync_checks();

    federation_sandbox_free(sandbox);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("federation C smoke test: ok\n");
    return 0;
}
