/* Unit tests for src/planner.c: one candidate per stream, matching by buffer and geometry,
 * the conservative flush rule across streams, handle destruction and the bounded pool. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/planner.h"
#include "convbn/shim.h"
#include "support/run_suite.h"

#define STREAM(n) ((cudaStream_t)(uintptr_t)(0x1000 * (n)))
#define HANDLE(n) ((cudnnHandle_t)(uintptr_t)(0x100000 * (n)))

static char buffers[4][64];

static struct convbn_tensor_geom nchw(int n, int c, int h, int w)
{
    struct convbn_tensor_geom t;
    memset(&t, 0, sizeof t);
    t.type = CUDNN_DATA_FLOAT;
    t.nb_dims = 4;
    t.dims[0] = n; t.dims[1] = c; t.dims[2] = h; t.dims[3] = w;
    t.strides[3] = 1; t.strides[2] = w; t.strides[1] = h * w; t.strides[0] = c * h * w;
    return t;
}

static struct convbn_conv_call conv_on(cudaStream_t s, cudnnHandle_t h, void *y)
{
    struct convbn_conv_call c;
    memset(&c, 0, sizeof c);
    c.stream = s;
    c.handle = h;
    c.y = nchw(1, 8, 4, 4);
    c.y_ptr = y;
    return c;
}

static struct convbn_bn_call bn_on(cudaStream_t s, const void *x)
{
    struct convbn_bn_call b;
    memset(&b, 0, sizeof b);
    b.stream = s;
    b.x = nchw(1, 8, 4, 4);
    b.x_ptr = x;
    return b;
}

static void drain(void)
{
    convbn_planner_flush(NULL, "test");
}

START_TEST(bn_consuming_output_matches)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[0]);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_pending(), 1);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 1);
    ck_assert_ptr_eq(got.conv.y_ptr, buffers[0]);
    ck_assert_int_eq(got.deferred, 0);
    ck_assert_int_eq(convbn_planner_pending(), 0);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
}
END_TEST

START_TEST(other_buffer_does_not_match_and_flushes)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[1]);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
    ck_assert_int_eq(convbn_planner_pending(), 0);
}
END_TEST

START_TEST(geometry_must_be_identical)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[0]);
    b.x.strides[0] += 16; /* padded batch stride: same pointer, other tensor */
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
    b = bn_on(STREAM(1), buffers[0]);
    b.x.type = CUDNN_DATA_HALF;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
}
END_TEST

START_TEST(bn_on_other_stream_does_not_match)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    struct convbn_bn_call b = bn_on(STREAM(2), buffers[0]);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
    ck_assert_int_eq(convbn_planner_pending(), 1); /* stream 1's candidate untouched */
}
END_TEST

START_TEST(work_on_other_stream_keeps_candidate)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    convbn_planner_flush(STREAM(2), "test");
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 1);
}
END_TEST

START_TEST(work_on_same_stream_flushes)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_pending got;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    convbn_planner_flush(STREAM(1), "test");
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
}
END_TEST

START_TEST(legacy_stream_work_flushes_everything)
{
    struct convbn_conv_call c1 = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_conv_call c2 = conv_on(STREAM(2), HANDLE(2), buffers[1]);
    convbn_planner_ran(&c1, CONVBN_FUSABLE);
    convbn_planner_ran(&c2, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_pending(), 2);
    convbn_planner_flush(cudaStreamLegacy, "test");
    ck_assert_int_eq(convbn_planner_pending(), 0);
}
END_TEST

START_TEST(legacy_candidate_flushed_by_any_stream)
{
    struct convbn_conv_call c = conv_on(NULL, HANDLE(1), buffers[0]);
    struct convbn_pending got;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    convbn_planner_flush(STREAM(3), "test");
    struct convbn_bn_call b = bn_on(cudaStreamLegacy, buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
}
END_TEST

START_TEST(null_and_legacy_are_one_stream)
{
    struct convbn_conv_call c = conv_on(NULL, HANDLE(1), buffers[0]);
    struct convbn_pending got;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    struct convbn_bn_call b = bn_on(cudaStreamLegacy, buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 1);
}
END_TEST

static void *per_thread_conv(void *arg)
{
    struct convbn_conv_call c = conv_on(cudaStreamPerThread, HANDLE(9), arg);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    return NULL;
}

START_TEST(per_thread_stream_is_per_thread)
{
    pthread_t t;
    struct convbn_pending got;
    pthread_create(&t, NULL, per_thread_conv, buffers[2]);
    pthread_join(t, NULL);
    /* This thread's per-thread stream is another stream: no match, theirs stays. */
    struct convbn_bn_call b = bn_on(cudaStreamPerThread, buffers[2]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
    ck_assert_int_eq(convbn_planner_pending(), 1);
}
END_TEST

START_TEST(destroying_handle_forgets_its_candidates)
{
    struct convbn_conv_call c1 = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_conv_call c2 = conv_on(STREAM(2), HANDLE(2), buffers[1]);
    convbn_planner_ran(&c1, CONVBN_FUSABLE);
    convbn_planner_ran(&c2, CONVBN_FUSABLE);
    convbn_planner_flush_handle(HANDLE(1), "test");
    ck_assert_int_eq(convbn_planner_pending(), 1);
}
END_TEST

START_TEST(second_conv_replaces_first)
{
    struct convbn_conv_call c1 = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_conv_call c2 = conv_on(STREAM(1), HANDLE(1), buffers[1]);
    struct convbn_pending got;
    convbn_planner_ran(&c1, CONVBN_FUSABLE);
    convbn_planner_ran(&c2, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_pending(), 1);
    struct convbn_bn_call b = bn_on(STREAM(1), buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&b, &got), 0);
}
END_TEST

START_TEST(pool_is_bounded)
{
    for (int i = 1; i <= 1000; i++) {
        struct convbn_conv_call c = conv_on(STREAM(i), HANDLE(1), buffers[0]);
        convbn_planner_ran(&c, CONVBN_FUSABLE);
    }
    ck_assert_int_le(convbn_planner_pending(), 256);
    ck_assert_int_gt(convbn_planner_pending(), 0);
    convbn_planner_flush_handle(HANDLE(1), "test");
    ck_assert_int_eq(convbn_planner_pending(), 0);
}
END_TEST

START_TEST(observe_mode_never_defers)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    enum convbn_reason why = CONVBN_REASON_ALIAS;
    convbn_cfg.mode = CONVBN_MODE_OBSERVE;
    ck_assert_int_eq(convbn_planner_offer(&c, 0, &why), 0);
    ck_assert_int_eq(why, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_pending(), 0);
}
END_TEST

START_TEST(conv_that_cannot_fold_is_not_deferred)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    enum convbn_reason why = CONVBN_FUSABLE;
    convbn_cfg.mode = CONVBN_MODE_FUSE;
    c.x.type = c.w.type = CUDNN_DATA_FLOAT;
    c.beta = 1.0;
    ck_assert_int_eq(convbn_planner_offer(&c, 0, &why), 0);
    ck_assert_int_eq(why, CONVBN_REASON_BLEND);
    c.beta = 0.0;
    c.w.type = CUDNN_DATA_DOUBLE;
    ck_assert_int_eq(convbn_planner_offer(&c, 0, &why), 0);
    ck_assert_int_eq(why, CONVBN_REASON_DTYPE);
}
END_TEST

START_TEST(capture_blocks_deferral)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    enum convbn_reason why = CONVBN_FUSABLE;
    convbn_cfg.mode = CONVBN_MODE_FUSE;
    c.x.type = c.w.type = CUDNN_DATA_FLOAT;
    convbn_planner_capture(+1);
    ck_assert_int_eq(convbn_planner_offer(&c, 0, &why), 0);
    ck_assert_int_eq(why, CONVBN_REASON_CAPTURE);
    convbn_planner_capture(-1);
}
END_TEST

static struct convbn_tensor_geom bias_geom(int k)
{
    struct convbn_tensor_geom b = nchw(1, k, 1, 1);
    return b;
}

START_TEST(bias_add_on_candidate_is_recorded)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_tensor_geom b = bias_geom(8);
    struct convbn_pending got;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_absorb_bias(STREAM(1), buffers[0], &c.y, buffers[3], &b, "t"),
                     CONVBN_ABSORB_RECORDED);
    struct convbn_bn_call bn = bn_on(STREAM(1), buffers[0]);
    ck_assert_int_eq(convbn_planner_take_match(&bn, &got), 1);
    ck_assert_ptr_eq(got.conv.bias_ptr, buffers[3]);
    ck_assert_int_eq(got.conv.bias_absorbed, 1);
}
END_TEST

START_TEST(other_adds_are_not_absorbed)
{
    struct convbn_conv_call c = conv_on(STREAM(1), HANDLE(1), buffers[0]);
    struct convbn_tensor_geom b = bias_geom(8), full = nchw(1, 8, 4, 4), wrong_k = bias_geom(4);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_absorb_bias(STREAM(1), buffers[1], &c.y, buffers[3], &b, "t"),
                     CONVBN_ABSORB_NONE); /* onto another buffer: flushes */
    ck_assert_int_eq(convbn_planner_pending(), 0);
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_absorb_bias(STREAM(1), buffers[0], &c.y, buffers[3], &full, "t"),
                     CONVBN_ABSORB_NONE); /* a full tensor, not a per-channel bias */
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_absorb_bias(STREAM(1), buffers[0], &c.y, buffers[3], &wrong_k, "t"),
                     CONVBN_ABSORB_NONE);
    c.kind = CONVBN_CONV_BIAS_ACT;
    convbn_planner_ran(&c, CONVBN_FUSABLE);
    ck_assert_int_eq(convbn_planner_absorb_bias(STREAM(1), buffers[0], &c.y, buffers[3], &b, "t"),
                     CONVBN_ABSORB_NONE); /* bias-activation already has its bias */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("planner");
    TCase *tc = tcase_create("candidates");
    tcase_add_checked_fixture(tc, drain, drain);
    tcase_add_test(tc, bn_consuming_output_matches);
    tcase_add_test(tc, other_buffer_does_not_match_and_flushes);
    tcase_add_test(tc, geometry_must_be_identical);
    tcase_add_test(tc, bn_on_other_stream_does_not_match);
    tcase_add_test(tc, work_on_other_stream_keeps_candidate);
    tcase_add_test(tc, work_on_same_stream_flushes);
    tcase_add_test(tc, legacy_stream_work_flushes_everything);
    tcase_add_test(tc, legacy_candidate_flushed_by_any_stream);
    tcase_add_test(tc, null_and_legacy_are_one_stream);
    tcase_add_test(tc, per_thread_stream_is_per_thread);
    tcase_add_test(tc, destroying_handle_forgets_its_candidates);
    tcase_add_test(tc, second_conv_replaces_first);
    tcase_add_test(tc, pool_is_bounded);
    tcase_add_test(tc, observe_mode_never_defers);
    tcase_add_test(tc, conv_that_cannot_fold_is_not_deferred);
    tcase_add_test(tc, capture_blocks_deferral);
    tcase_add_test(tc, bias_add_on_candidate_is_recorded);
    tcase_add_test(tc, other_adds_are_not_absorbed);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
