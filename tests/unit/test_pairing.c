/* Unit tests for src/pairing.c: a plain conv -> spatial BN folds; each disqualifier gives
 * its own reason; reason names are stable (they appear in logs and summaries). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/pairing.h"
#include "support/run_suite.h"

static struct convbn_conv_call conv;
static struct convbn_bn_call bn;

static void setup(void)
{
    memset(&conv, 0, sizeof conv);
    memset(&bn, 0, sizeof bn);
    conv.kind = CONVBN_CONV_PLAIN;
    conv.alpha = 1.0;
    conv.x.type = conv.y.type = conv.w.type = CUDNN_DATA_FLOAT;
    bn.mode = CUDNN_BATCHNORM_SPATIAL;
    bn.alpha = 1.0;
    bn.x.type = bn.y.type = CUDNN_DATA_FLOAT;
    bn.params.type = CUDNN_DATA_FLOAT;
}

START_TEST(plain_pair_is_fusable)
{
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
    bn.mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
    conv.alpha = 0.5; /* alphas fold into the scale */
    bn.alpha = 2.0;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
}
END_TEST

START_TEST(half_and_bf16_fusable)
{
    conv.x.type = conv.y.type = conv.w.type = bn.x.type = bn.y.type = CUDNN_DATA_HALF;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
    conv.x.type = conv.y.type = conv.w.type = bn.x.type = bn.y.type = CUDNN_DATA_BFLOAT16;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
}
END_TEST

START_TEST(per_activation_not_fusable)
{
    bn.mode = CUDNN_BATCHNORM_PER_ACTIVATION;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_PER_ACTIVATION);
}
END_TEST

START_TEST(blend_not_fusable)
{
    conv.beta = 1.0;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_BLEND);
    conv.beta = 0.0;
    bn.beta = 0.5;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_BLEND);
}
END_TEST

START_TEST(bias_activation_rules)
{
    conv.kind = CONVBN_CONV_BIAS_ACT;
    conv.activation = CUDNN_ACTIVATION_IDENTITY;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_FUSABLE);
    conv.activation = CUDNN_ACTIVATION_RELU;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_ACTIVATION);
    conv.activation = CUDNN_ACTIVATION_IDENTITY;
    conv.alpha2 = 1.0;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_RESIDUAL);
}
END_TEST

START_TEST(types_not_fusable)
{
    conv.x.type = conv.y.type = conv.w.type = bn.x.type = bn.y.type = CUDNN_DATA_DOUBLE;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_DTYPE);
    setup();
    conv.w.type = CUDNN_DATA_INT8;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_DTYPE);
    setup();
    bn.y.type = CUDNN_DATA_HALF;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_DTYPE);
    setup();
    bn.params.type = CUDNN_DATA_HALF;
    ck_assert_int_eq(convbn_pair_reason(&conv, &bn), CONVBN_REASON_BN_PARAM_TYPE);
}
END_TEST

START_TEST(conv_side_reasons)
{
    ck_assert_int_eq(convbn_conv_reason(&conv), CONVBN_FUSABLE);
    conv.beta = 0.5;
    ck_assert_int_eq(convbn_conv_reason(&conv), CONVBN_REASON_BLEND);
    conv.beta = 0.0;
    bn.mode = CUDNN_BATCHNORM_PER_ACTIVATION; /* BN-side: not the conv's concern */
    ck_assert_int_eq(convbn_conv_reason(&conv), CONVBN_FUSABLE);
    conv.kind = CONVBN_CONV_BIAS_ACT;
    conv.activation = CUDNN_ACTIVATION_RELU;
    ck_assert_int_eq(convbn_conv_reason(&conv), CONVBN_REASON_ACTIVATION);
}
END_TEST

START_TEST(reason_names)
{
    ck_assert_str_eq(convbn_reason_name(CONVBN_FUSABLE), "fusable");
    ck_assert_str_eq(convbn_reason_name(CONVBN_REASON_PER_ACTIVATION), "per-activation");
    ck_assert_str_eq(convbn_reason_name(CONVBN_REASON_BLEND), "blend");
    ck_assert_str_eq(convbn_reason_name(CONVBN_REASON_GRAD_MODE), "grad-mode");
    ck_assert_str_eq(convbn_reason_name(CONVBN_REASON_ALIAS), "alias");
    ck_assert_str_eq(convbn_reason_name(CONVBN_REASON_COUNT), "unknown");
    for (int r = 0; r < CONVBN_REASON_COUNT; r++)
        ck_assert_ptr_nonnull(convbn_reason_name((enum convbn_reason)r));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pairing");
    TCase *tc = tcase_create("reasons");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, plain_pair_is_fusable);
    tcase_add_test(tc, half_and_bf16_fusable);
    tcase_add_test(tc, per_activation_not_fusable);
    tcase_add_test(tc, blend_not_fusable);
    tcase_add_test(tc, bias_activation_rules);
    tcase_add_test(tc, types_not_fusable);
    tcase_add_test(tc, conv_side_reasons);
    tcase_add_test(tc, reason_names);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
