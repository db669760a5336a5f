/* What a C user of the installed package writes: built with `cc $(pkg-config --cflags --libs
 * federation)` only (scripts/package-test.sh), it reads a configuration file (the sandbox's, from
 * `federation sandbox --write-config`), calls logical service `user` until it answers 200 (the
 * sandbox's instances pass their first health checks within a second or two; 30 s deadline),
 * and prints the library version, the status and the cluster that answered. Exits non-zero with
 * the last error otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <federation.h>

#include <stdio.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <federation.yaml>\n", argv[0]);
        return 2;
    }
    federation_client_t *client = NULL;
    federation_error_t *err = federation_client_new_from_file(argv[1], &client);
    if (err != NULL) {
        fprintf(stderr, "client: %s\n", federation_error_message(err));
        federation_error_free(err);
        return 1;
    }
    int code = 1;
    double deadline = now_seconds() + 30.0;
    struct timespec pause = {0, 200 * 1000 * 1000};
    while (code != 0 && now_seconds() < deadline) {
        federation_response_t *response = NULL;
        federation_error_free(err);
        err = federation_client_call_blocking(client, "user", "GET", "/api/v1/users/42", NULL, 0,
                                              NULL, 0, NULL, NULL, &response);
        if (err == NULL && federation_response_status(response) == 200) {
            printf("version=%s status=%u cluster=%s\n", federation_version(),
                   (unsigned)federation_response_status(response),
                   federation_response_cluster(response));
            code = 0;
        } else {
            nanosleep(&pause, NULL);
        }
        federation_response_free(response);
    }
    if (code != 0) {
        fprintf(stderr, "no 200 from `user` within 30 s: %s\n",
                err != NULL ? federation_error_message(err) : "non-200 status");
    }
    federation_error_free(err);
    federation_client_free(client);
    return code;
}
