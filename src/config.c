/* Parses the CONVBN_* environment variables into a struct convbn_config (DESIGN.md
 * section 6).  Pure: the environment lookup and the warning sink are passed in, so the
 * unit tests drive it without touching the process environment.  Owns no global state;
 * the process-wide configuration lives in entry.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/config.h"

static const char *const mode_names[] = {"off", "observe", "auto", "fuse"};
static const char *const flush_names[] = {"conservative", "precise"};

const char *convbn_mode_name(enum convbn_mode mode)
{
    return mode_names[mode];
}

static void warn_bad(convbn_warn_fn warn, const char *name, const char *value, const char *dflt,
                     const char *expected)
{
    char msg[512];
    snprintf(msg, sizeof msg, "ignoring %s=\"%.200s\" (expected %s); using %s", name, value,
             expected, dflt);
    warn(msg);
}

/* Returns the index of value in names[0..n), or -1. */
static int lookup_word(const char *value, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

/* Parses a base-10 integer in [lo, hi]; returns 1 and stores it, or 0. */
static int parse_long(const char *value, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* Copies value to dst replacing every "%p" by pid; returns 0 if it does not fit. */
static int expand_path(char *dst, size_t cap, const char *value, long pid)
{
    size_t used = 0;
    for (const char *p = value; *p; p++) {
        char chunk[32];
        size_t len;
        if (p[0] == '%' && p[1] == 'p') {
            len = (size_t)snprintf(chunk, sizeof chunk, "%ld", pid);
            p++;
        } else {
            chunk[0] = *p;
            len = 1;
        }
        if (used + len + 1 > cap)
            return 0;
        memcpy(dst + used, chunk, len);
        used += len;
    }
    dst[used] = '\0';
    return 1;
}

static int parse_word(const char *name, const char *value, const char *const *names, int n,
                      int dflt, convbn_warn_fn warn, int *warnings)
{
    int idx = lookup_word(value, names, n);
    if (idx >= 0)
        return idx;
    char expected[128] = "";
    for (int i = 0; i < n; i++)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s",
                 i ? "|" : "", names[i]);
    warn_bad(warn, name, value, names[dflt], expected);
    (*warnings)++;
    return dflt;
}

static long parse_number(const char *name, const char *value, long lo, long hi, long dflt,
                         convbn_warn_fn warn, int *warnings)
{
    long v;
    if (parse_long(value, lo, hi, &v))
        return v;
    char expected[64], dflt_text[32];
    snprintf(expected, sizeof expected, "an integer %ld..%ld", lo, hi);
    snprintf(dflt_text, sizeof dflt_text, "%ld", dflt);
    warn_bad(warn, name, value, dflt_text, expected);
    (*warnings)++;
    return dflt;
}

static void parse_path(const char *name, const char *value, char *dst, long pid, convbn_warn_fn warn,
                       int *warnings)
{
    if (value[0] && expand_path(dst, CONVBN_PATH_MAX, value, pid))
        return;
    dst[0] = '\0';
    warn_bad(warn, name, value, "the default", "a non-empty path shorter than 4096 bytes");
    (*warnings)++;
}

int convbn_config_parse(struct convbn_config *cfg, convbn_getenv_fn getenv_fn, convbn_warn_fn warn,
                        long pid)
{
    int warnings = 0;
    const char *v;
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = CONVBN_MODE_AUTO;
    cfg->flush = CONVBN_FLUSH_CONSERVATIVE;
    cfg->max_device_mb = 256;
    cfg->backend_graph = 1;

    if ((v = getenv_fn("CONVBN_MODE")))
        cfg->mode = (enum convbn_mode)parse_word("CONVBN_MODE", v, mode_names, 4,
                                                 CONVBN_MODE_AUTO, warn, &warnings);
    if ((v = getenv_fn("CONVBN_LOG")))
        cfg->log_level = (int)parse_number("CONVBN_LOG", v, 0, 2, 0, warn, &warnings);
    if ((v = getenv_fn("CONVBN_LOG_FILE")))
        parse_path("CONVBN_LOG_FILE", v, cfg->log_file, pid, warn, &warnings);
    cfg->stats = cfg->log_level > 0;
    if ((v = getenv_fn("CONVBN_STATS")))
        cfg->stats = (int)parse_number("CONVBN_STATS", v, 0, 1, cfg->stats, warn, &warnings);
    if ((v = getenv_fn("CONVBN_TRACE")))
        parse_path("CONVBN_TRACE", v, cfg->trace_file, pid, warn, &warnings);
    if ((v = getenv_fn("CONVBN_VERIFY")))
        cfg->verify = (int)parse_number("CONVBN_VERIFY", v, 0, 1, 0, warn, &warnings);
    if ((v = getenv_fn("CONVBN_FLUSH")))
        cfg->flush = (enum convbn_flush_rule)parse_word("CONVBN_FLUSH", v, flush_names, 2,
                                                        CONVBN_FLUSH_CONSERVATIVE, warn, &warnings);
    if ((v = getenv_fn("CONVBN_MAX_DEVICE_MB")))
        cfg->max_device_mb = parse_number("CONVBN_MAX_DEVICE_MB", v, 0, 1L << 20, 256, warn,
                                          &warnings);
    if ((v = getenv_fn("CONVBN_BACKEND_GRAPH")))
        cfg->backend_graph = (int)parse_number("CONVBN_BACKEND_GRAPH", v, 0, 1, 1, warn,
                                               &warnings);
    return warnings;
}
