/* Unit tests for src/config.c: defaults, every variable, %p expansion, and one warning
 * per bad value with the default kept. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/config.h"
#include "support/run_suite.h"

static const char *env_names[16], *env_values[16];
static int env_count;
static char warnings[8][512];
static int warning_count;

static void set_env(const char *name, const char *value)
{
    env_names[env_count] = name;
    env_values[env_count++] = value;
}

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < env_count; i++)
        if (strcmp(env_names[i], name) == 0)
            return env_values[i];
    return NULL;
}

static void record_warning(const char *msg)
{
    if (warning_count < 8)
        strncpy(warnings[warning_count], msg, sizeof warnings[0] - 1);
    warning_count++;
}

static void reset(void)
{
    env_count = 0;
    warning_count = 0;
    memset(warnings, 0, sizeof warnings);
}

START_TEST(defaults_when_unset)
{
    struct convbn_config cfg;
    ck_assert_int_eq(convbn_config_parse(&cfg, fake_getenv, record_warning, 42), 0);
    ck_assert_int_eq(cfg.mode, CONVBN_MODE_AUTO);
    ck_assert_int_eq(cfg.log_level, 0);
    ck_assert_str_eq(cfg.log_file, "");
    ck_assert_int_eq(cfg.stats, 0);
    ck_assert_str_eq(cfg.trace_file, "");
    ck_assert_int_eq(cfg.verify, 0);
    ck_assert_int_eq(cfg.flush, CONVBN_FLUSH_CONSERVATIVE);
    ck_assert_int_eq(cfg.max_device_mb, 256);
    ck_assert_int_eq(cfg.backend_graph, 1);
    ck_assert_int_eq(warning_count, 0);
}
END_TEST

START_TEST(every_variable_parsed)
{
    struct convbn_config cfg;
    set_env("CONVBN_MODE", "fuse");
    set_env("CONVBN_LOG", "2");
    set_env("CONVBN_LOG_FILE", "/tmp/log.%p.txt");
    set_env("CONVBN_STATS", "0");
    set_env("CONVBN_TRACE", "t-%p-%p.jsonl");
    set_env("CONVBN_VERIFY", "1");
    set_env("CONVBN_FLUSH", "precise");
    set_env("CONVBN_MAX_DEVICE_MB", "1024");
    set_env("CONVBN_BACKEND_GRAPH", "0");
    ck_assert_int_eq(convbn_config_parse(&cfg, fake_getenv, record_warning, 1234), 0);
    ck_assert_int_eq(cfg.mode, CONVBN_MODE_FUSE);
    ck_assert_int_eq(cfg.log_level, 2);
    ck_assert_str_eq(cfg.log_file, "/tmp/log.1234.txt");
    ck_assert_int_eq(cfg.stats, 0);
    ck_assert_str_eq(cfg.trace_file, "t-1234-1234.jsonl");
    ck_assert_int_eq(cfg.verify, 1);
    ck_assert_int_eq(cfg.flush, CONVBN_FLUSH_PRECISE);
    ck_assert_int_eq(cfg.max_device_mb, 1024);
    ck_assert_int_eq(cfg.backend_graph, 0);
}
END_TEST

START_TEST(stats_default_follows_log)
{
    struct convbn_config cfg;
    set_env("CONVBN_LOG", "1");
    convbn_config_parse(&cfg, fake_getenv, record_warning, 1);
    ck_assert_int_eq(cfg.stats, 1);
    reset();
    set_env("CONVBN_LOG", "0");
    set_env("CONVBN_STATS", "1");
    convbn_config_parse(&cfg, fake_getenv, record_warning, 1);
    ck_assert_int_eq(cfg.stats, 1);
}
END_TEST

static const char *const bad_values[][2] = {
    {"CONVBN_MODE", "Fuse"},        {"CONVBN_MODE", ""},          {"CONVBN_LOG", "3"},
    {"CONVBN_LOG", "-1"},           {"CONVBN_LOG", "1x"},         {"CONVBN_STATS", "yes"},
    {"CONVBN_VERIFY", "2"},         {"CONVBN_FLUSH", "eager"},    {"CONVBN_MAX_DEVICE_MB", "-5"},
    {"CONVBN_MAX_DEVICE_MB", "lots"}, {"CONVBN_LOG_FILE", ""},    {"CONVBN_TRACE", ""},
    {"CONVBN_BACKEND_GRAPH", "2"},  {"CONVBN_BACKEND_GRAPH", "on"},
};

START_TEST(bad_value_warns_once_and_keeps_default)
{
    struct convbn_config cfg, dflt;
    reset();
    convbn_config_parse(&dflt, fake_getenv, record_warning, 7);
    set_env(bad_values[_i][0], bad_values[_i][1]);
    ck_assert_int_eq(convbn_config_parse(&cfg, fake_getenv, record_warning, 7), 1);
    ck_assert_int_eq(warning_count, 1);
    ck_assert_ptr_nonnull(strstr(warnings[0], bad_values[_i][0]));
    ck_assert_ptr_nonnull(strstr(warnings[0], "using"));
    ck_assert_int_eq(memcmp(&cfg, &dflt, sizeof cfg), 0);
}
END_TEST

START_TEST(overlong_path_rejected)
{
    static char path[CONVBN_PATH_MAX + 10];
    struct convbn_config cfg;
    memset(path, 'a', sizeof path - 1);
    set_env("CONVBN_LOG_FILE", path);
    ck_assert_int_eq(convbn_config_parse(&cfg, fake_getenv, record_warning, 7), 1);
    ck_assert_str_eq(cfg.log_file, "");
}
END_TEST

START_TEST(mode_names)
{
    ck_assert_str_eq(convbn_mode_name(CONVBN_MODE_OFF), "off");
    ck_assert_str_eq(convbn_mode_name(CONVBN_MODE_OBSERVE), "observe");
    ck_assert_str_eq(convbn_mode_name(CONVBN_MODE_AUTO), "auto");
    ck_assert_str_eq(convbn_mode_name(CONVBN_MODE_FUSE), "fuse");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, defaults_when_unset);
    tcase_add_test(tc, every_variable_parsed);
    tcase_add_test(tc, stats_default_follows_log);
    tcase_add_loop_test(tc, bad_value_warns_once_and_keeps_default, 0,
                        (int)(sizeof bad_values / sizeof bad_values[0]));
    tcase_add_test(tc, overlong_path_rejected);
    tcase_add_test(tc, mode_names);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
