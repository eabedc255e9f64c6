/* SPDX-License-Identifier: Apache-2.0 */
/* The Redis names deployed systems hold data under (and the KEDA scaler reads): changing
 * one is a data migration, never an edit of redis_keys.h alone. */
#include "unit.h"
#include "redis_keys.h"

static void names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(ALM_QUEUE_INGEST, "ingest");
    assert_string_equal(ALM_QUEUE_MAINTENANCE, "maintenance");
    assert_string_equal(ALM_QUEUE_INGEST_BULK, "ingest_bulk");
    assert_string_equal(ALM_QUEUE_GROUP, "workers");
    assert_string_equal(ALM_STREAM_PREFIX, "almanac:queue:");
    assert_string_equal(ALM_QUEUE_DELAYED, "almanac:delayed:");
    assert_string_equal(ALM_QUEUE_DEAD, "almanac:dead:");
    assert_string_equal(ALM_OUTBOX_DEDUP, "almanac:outbox:sent:");
    assert_string_equal(ALM_HEARTBEAT_PREFIX, "almanac:heartbeat:");
    assert_string_equal(ALM_BEAT_LEADER, "almanac:beat:leader");
    assert_string_equal(ALM_BEAT_FENCE, "almanac:beat:fence");
    assert_string_equal(ALM_BEAT_LAST_RUN, "almanac:beat:last_run");
    assert_string_equal(ALM_QUEUE_EPOCH, "almanac:epoch");
    assert_string_equal(ALM_LOGIN_LIMIT_ACCOUNT, "almanac:ratelimit:login:acct:");
    assert_string_equal(ALM_LOGIN_LIMIT_ADDRESS, "almanac:ratelimit:login:ip:");
    assert_string_equal(ALM_ANSWER_LIMIT, "almanac:answers:rate:");
    assert_string_equal(ALM_READY_WRITE_PROBE, "almanac:ready:write");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
