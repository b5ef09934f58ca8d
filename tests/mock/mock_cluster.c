/*
 * mock_cluster: librdkafka's mock cluster, driven over stdin and stdout.
 *
 * Usage: mock_cluster BROKERS
 *
 * Starts BROKERS mock brokers (ids 1..BROKERS) on 127.0.0.1, prints
 * "bootstrap HOST:PORT,..." and then reads one command per line on stdin,
 * answering each with one line on stdout: "ok [details]" or "err MESSAGE".
 * It exits when stdin closes, so the process that drives it cannot leave it
 * behind. kafkit-tests' MockCluster (tests/src/mock_cluster.rs) is the
 * driver; it builds this file with gcc against Debian's librdkafka-dev
 * headers and links it against the librdkafka 2.16 library of the
 * confluent-kafka wheel.
 *
 * Commands (broker -1 means every broker where librdkafka allows it):
 *   topic NAME PARTITIONS REPLICATION   create a topic
 *   down BROKER                         close its connections, refuse new ones
 *   up BROKER                           accept connections again
 *   rtt BROKER MILLIS                   delay every response of a broker
 *   errors APIKEY CODE...               the next requests of APIKEY (to any
 *                                       broker) fail with these codes in order
 *   broker_errors BROKER APIKEY CODE:MILLIS...
 *                                       the same for one broker, each answer
 *                                       delayed by MILLIS
 *   clear_errors APIKEY                 forget the queued errors of APIKEY
 *   leader TOPIC PARTITION BROKER       move a partition's leader (-1: none)
 *   follower TOPIC PARTITION BROKER     the replica a consumer should read from
 *   topic_error TOPIC CODE              Metadata reports CODE for TOPIC
 *   coordinator KEYTYPE KEY BROKER      pin the group/transaction coordinator
 *   apiversion APIKEY MIN MAX           the versions brokers advertise for an
 *                                       API (-1 -1: not at all)
 *   track                               start recording requests
 *   requests                            "ok N" then N lines "BROKER APIKEY"
 *                                       of the requests recorded, oldest
 *                                       first; clears the record
 *   quit                                exit
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Request tracking is newer than the 2.0.2 headers Debian ships; the 2.16
 * library we link against exports it with these signatures. */
typedef struct rd_kafka_mock_request_s rd_kafka_mock_request_t;
void rd_kafka_mock_start_request_tracking(rd_kafka_mock_cluster_t *mcluster);
rd_kafka_mock_request_t **rd_kafka_mock_get_requests(rd_kafka_mock_cluster_t *mcluster,
                                                     size_t *cntp);
void rd_kafka_mock_clear_requests(rd_kafka_mock_cluster_t *mcluster);
int32_t rd_kafka_mock_request_id(rd_kafka_mock_request_t *mreq);
int16_t rd_kafka_mock_request_api_key(rd_kafka_mock_request_t *mreq);
void rd_kafka_mock_request_destroy_array(rd_kafka_mock_request_t **mreqs, size_t cnt);

#define MAX_ARGS 260

static rd_kafka_mock_cluster_t *mcluster;

static void reply(rd_kafka_resp_err_t err) {
        if (err)
                printf("err %s: %s\n", rd_kafka_err2name(err), rd_kafka_err2str(err));
        else
                printf("ok\n");
}

/* Parses a whole decimal integer; returns 0 on success. */
static int parse_int(const char *s, long *out) {
        char *end;
        errno = 0;
        *out = strtol(s, &end, 10);
        return (errno || end == s || *end) ? -1 : 0;
}

static void cmd_requests(void) {
        size_t cnt = 0, i;
        rd_kafka_mock_request_t **reqs = rd_kafka_mock_get_requests(mcluster, &cnt);
        printf("ok %zu\n", cnt);
        for (i = 0; i < cnt; i++)
                printf("%" PRId32 " %" PRId16 "\n", rd_kafka_mock_request_id(reqs[i]),
                       rd_kafka_mock_request_api_key(reqs[i]));
        rd_kafka_mock_request_destroy_array(reqs, cnt);
        rd_kafka_mock_clear_requests(mcluster);
}

/* Runs one command (argv[0] is its name); returns 0 to go on, 1 to quit. */
static int run(int argc, char **argv) {
        long n[MAX_ARGS];
        int i;
        const char *cmd = argv[0];

        /* Every argument that parses as a number is available in n[]. */
        for (i = 1; i < argc; i++)
                if (parse_int(argv[i], &n[i]))
                        n[i] = 0;

#define NEED(count)                                                            \
        do {                                                                   \
                if (argc != (count) + 1) {                                     \
                        printf("err %s takes %d arguments, got %d\n", cmd,      \
                               (count), argc - 1);                             \
                        return 0;                                              \
                }                                                              \
        } while (0)

        if (!strcmp(cmd, "topic")) {
                NEED(3);
                reply(rd_kafka_mock_topic_create(mcluster, argv[1], (int)n[2], (int)n[3]));
        } else if (!strcmp(cmd, "down")) {
                NEED(1);
                reply(rd_kafka_mock_broker_set_down(mcluster, (int32_t)n[1]));
        } else if (!strcmp(cmd, "up")) {
                NEED(1);
                reply(rd_kafka_mock_broker_set_up(mcluster, (int32_t)n[1]));
        } else if (!strcmp(cmd, "rtt")) {
                NEED(2);
                reply(rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)n[1], (int)n[2]));
        } else if (!strcmp(cmd, "errors")) {
                rd_kafka_resp_err_t errs[MAX_ARGS];
                if (argc < 3) {
                        printf("err errors takes an api key and at least one code\n");
                        return 0;
                }
                for (i = 2; i < argc; i++)
                        errs[i - 2] = (rd_kafka_resp_err_t)n[i];
                rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)n[1],
                                                        (size_t)(argc - 2), errs);
                reply(RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (!strcmp(cmd, "broker_errors")) {
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
                if (argc < 4) {
                        printf("err broker_errors takes a broker, an api key and "
                               "at least one CODE:MILLIS\n");
                        return 0;
                }
                /* One call per pair keeps the variadic API simple. */
                for (i = 3; i < argc && !err; i++) {
                        long code = 0, ms = 0;
                        char *colon = strchr(argv[i], ':');
                        if (!colon) {
                                printf("err `%s` is not CODE:MILLIS\n", argv[i]);
                                return 0;
                        }
                        *colon = '\0';
                        if (parse_int(argv[i], &code) || parse_int(colon + 1, &ms)) {
                                printf("err `%s:%s` is not CODE:MILLIS\n", argv[i], colon + 1);
                                return 0;
                        }
                        err = rd_kafka_mock_broker_push_request_error_rtts(
                            mcluster, (int32_t)n[1], (int16_t)n[2], 1,
                            (rd_kafka_resp_err_t)code, (int)ms);
                }
                reply(err);
        } else if (!strcmp(cmd, "clear_errors")) {
                NEED(1);
                rd_kafka_mock_clear_request_errors(mcluster, (int16_t)n[1]);
                reply(RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (!strcmp(cmd, "leader")) {
                NEED(3);
                reply(rd_kafka_mock_partition_set_leader(mcluster, argv[1], (int32_t)n[2],
                                                         (int32_t)n[3]));
        } else if (!strcmp(cmd, "follower")) {
                NEED(3);
                reply(rd_kafka_mock_partition_set_follower(mcluster, argv[1], (int32_t)n[2],
                                                           (int32_t)n[3]));
        } else if (!strcmp(cmd, "topic_error")) {
                NEED(2);
                rd_kafka_mock_topic_set_error(mcluster, argv[1], (rd_kafka_resp_err_t)n[2]);
                reply(RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (!strcmp(cmd, "coordinator")) {
                NEED(3);
                reply(rd_kafka_mock_coordinator_set(mcluster, argv[1], argv[2], (int32_t)n[3]));
        } else if (!strcmp(cmd, "apiversion")) {
                NEED(3);
                reply(rd_kafka_mock_set_apiversion(mcluster, (int16_t)n[1], (int16_t)n[2],
                                                   (int16_t)n[3]));
        } else if (!strcmp(cmd, "track")) {
                NEED(0);
                rd_kafka_mock_start_request_tracking(mcluster);
                reply(RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (!strcmp(cmd, "requests")) {
                NEED(0);
                cmd_requests();
        } else if (!strcmp(cmd, "quit")) {
                printf("ok\n");
                return 1;
        } else {
                printf("err unknown command `%s`\n", cmd);
        }
        return 0;
#undef NEED
}

int main(int argc, char **argv) {
        char errstr[512], line[8192];
        long brokers;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;

        if (argc != 2 || parse_int(argv[1], &brokers) || brokers < 1) {
                fprintf(stderr, "usage: %s BROKERS\n", argv[0]);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);

        /* The mock cluster runs on the background thread of a client
         * handle; this producer never produces. */
        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
                fprintf(stderr, "%s\n", errstr);
                return 1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", errstr);
                return 1;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mcluster) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                return 1;
        }
        printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));

        while (fgets(line, sizeof(line), stdin)) {
                char *args[MAX_ARGS], *save = NULL, *tok;
                int n = 0;
                for (tok = strtok_r(line, " \t\r\n", &save); tok && n < MAX_ARGS;
                     tok = strtok_r(NULL, " \t\r\n", &save))
                        args[n++] = tok;
                if (n == 0)
                        continue;
                if (run(n, args))
                        break;
        }

        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
