/* convbn-bench: replays cuDNN call traces (docs/trace-schema.md) in three modes in one
 * process, interleaved per iteration: baseline (shim off), shim (fuse mode) and deploy
 * (BN folded offline: the best any fusion can do); or, with --summary, once in observe mode
 * to report what the shim finds.  Runs under the shim (LD_PRELOAD) and switches its mode
 * through convbn_set_mode.  This file owns the command line, the order of the steps per
 * trace and the exit status. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define DEFAULT_MAX_OPS 200000
#define MAX_ITERATIONS 1000

enum { EXIT_MISMATCH = 1, EXIT_ERROR = 2 };

static const char usage_text[] =
    "usage: convbn-bench [options] TRACE...\n"
    "       convbn-bench --summary [--json FILE] [--csv FILE] TRACE...\n"
    "Replays each trace in three modes, interleaved per iteration: baseline (shim off), shim\n"
    "(fuse mode) and deploy (BN folded offline), checks each pair's output against baseline and\n"
    "prints a table per pair signature.  Run it under the shim:\n"
    "  LD_PRELOAD=build/libconvbn_shim.so convbn-bench bench/traces/resnet50.jsonl\n"
    "options:\n"
    "  -n N          timed iterations (default 5, at most 1000)\n"
    "  -w N          warm-up iterations (default 1)\n"
    "  --seed N      seed of the random data (default 1)\n"
    "  --csv FILE    write the rows as CSV\n"
    "  --json FILE   write the results as JSON\n"
    "  --no-shim     run without the shim: baseline and deploy only\n"
    "  --summary     replay once in observe mode; print pairs, fusable fraction, reasons\n"
    "                and activation bytes saved (JSON: one row per pair)\n"
    "  --max-ops N   refuse traces with more operations (default 200000)\n"
    "  -h, --help    this text\n"
    "exit status: 0 ok, 1 a pair's output disagrees with baseline beyond tolerance\n"
    "(float 1e-4, half 1e-2, bfloat16 5e-2 relative to max(1, |baseline|)), 2 an error\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "convbn-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    return -1;
}

static int parse_number(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s expects an integer in [%ld, %ld], got \"%%s\"", opt, lo, hi);
        return usage_error(msg, s);
    }
    *out = v;
    return 0;
}

/* Parses argv into *opt; returns the index of the first trace, or -1 (usage printed), or 0
 * when --help was given. */
static int parse_args(int argc, char **argv, struct bench_options *opt)
{
    enum { SEED = 256, CSV, JSON, NO_SHIM, SUMMARY, MAX_OPS };
    static const struct option longs[] = {
        {"seed", required_argument, NULL, SEED},     {"csv", required_argument, NULL, CSV},
        {"json", required_argument, NULL, JSON},     {"no-shim", no_argument, NULL, NO_SHIM},
        {"summary", no_argument, NULL, SUMMARY},     {"max-ops", required_argument, NULL, MAX_OPS},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    long v;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":n:w:h", longs, NULL)) != -1;) {
        int rc = 0;
        switch (c) {
        case 'n':
            rc = parse_number("-n", optarg, 1, MAX_ITERATIONS, &v);
            opt->iterations = (int)v;
            break;
        case 'w':
            rc = parse_number("-w", optarg, 0, MAX_ITERATIONS, &v);
            opt->warmup = (int)v;
            break;
        case SEED:
            rc = parse_number("--seed", optarg, 0, LONG_MAX, &v);
            opt->seed = (uint64_t)v;
            break;
        case MAX_OPS:
            rc = parse_number("--max-ops", optarg, 1, 100000000, &v);
            opt->max_ops = (size_t)v;
            break;
        case CSV: opt->csv = optarg; break;
        case JSON: opt->json = optarg; break;
        case NO_SHIM: opt->no_shim = 1; break;
        case SUMMARY: opt->summary = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
        if (rc)
            return -1;
    }
    if (optind >= argc)
        return usage_error("no trace given%s", "");
    if (opt->summary && opt->no_shim)
        return usage_error("--summary reads the shim's counters: no --no-shim with it%s", "");
    return optind;
}

/* Finds the shim; with --no-shim, switches a preloaded one off and hides it. */
static int find_shim(const struct bench_options *opt, struct shim_api *shim)
{
    int found = shim_api_find(shim) == 0;
    if (opt->no_shim) {
        shim_set_mode(shim, "off");
        memset(shim, 0, sizeof *shim);
        return 0;
    }
    if (found)
        return 0;
    fprintf(stderr,
            "convbn-bench: the shim is not preloaded (no convbn_set_mode in this process).\n"
            "Run it as LD_PRELOAD=/path/to/libconvbn_shim.so convbn-bench ... (or through\n"
            "scripts/convbn-run), or pass --no-shim for baseline and deploy only.\n");
    return -1;
}

struct outputs {
    FILE *csv;
    struct json_object *traces;
    size_t mismatches;
};

/* Benchmarks (or summarises) one prepared trace and adds it to the outputs. */
static int run_replay(struct bench_replay *r, const struct shim_api *shim,
                      const struct bench_options *opt, struct bench_clock *clk,
                      struct outputs *o)
{
    struct bench_result res;
    if (opt->summary)
        return summary_run(r, shim, stdout, o->csv, o->traces);
    if (measure_run(r, shim, opt, clk, &res)) {
        measure_free(&res);
        return -1;
    }
    report_table(stdout, r, &res, clk);
    if (o->csv)
        report_csv(o->csv, r, &res);
    if (o->traces)
        json_object_array_add(o->traces, report_json(r, &res));
    o->mismatches += res.check.failures;
    measure_free(&res);
    return 0;
}

static int run_trace(const char *path, const struct shim_api *shim,
                     const struct bench_options *opt, struct bench_clock *clk, struct outputs *o)
{
    struct trace t;
    struct bench_replay r;
    char err[BENCH_ERR];
    if (trace_load_file(path, opt->max_ops, &t, err, sizeof err)) {
        fprintf(stderr, "convbn-bench: %s\n", err);
        return -1;
    }
    int rc = replay_open(&r, &t, opt->seed) || run_replay(&r, shim, opt, clk, o);
    if (rc)
        fprintf(stderr, "convbn-bench: %s\n", r.err);
    fflush(stdout);
    replay_close(&r);
    trace_free(&t);
    return rc ? -1 : 0;
}

static struct json_object *json_root(const struct bench_options *opt, const struct bench_clock *clk,
                                     struct json_object *traces)
{
    struct json_object *root = json_object_new_object();
    json_object_object_add(root, "tool", json_object_new_string("convbn-bench"));
    const char *mode = opt->summary ? "summary" : "bench";
    json_object_object_add(root, "mode", json_object_new_string(mode));
    if (!opt->summary) {
        json_object_object_add(root, "timing", json_object_new_string(clk->label));
        json_object_object_add(root, "device", json_object_new_string(clk->device));
        json_object_object_add(root, "iterations", json_object_new_int(opt->iterations));
        json_object_object_add(root, "warmup", json_object_new_int(opt->warmup));
        json_object_object_add(root, "seed", json_object_new_int64((int64_t)opt->seed));
    }
    json_object_object_add(root, "traces", traces);
    return root;
}

static int open_outputs(const struct bench_options *opt, struct outputs *o)
{
    memset(o, 0, sizeof *o);
    if (opt->csv && !(o->csv = fopen(opt->csv, "w"))) {
        fprintf(stderr, "convbn-bench: %s: %s\n", opt->csv, strerror(errno));
        return -1;
    }
    if (o->csv)
        (opt->summary ? summary_csv_header : report_csv_header)(o->csv);
    if (opt->json)
        o->traces = json_object_new_array();
    return 0;
}

/* Writes the JSON file and closes the CSV; returns 0 or -1. */
static int close_outputs(const struct bench_options *opt, const struct bench_clock *clk,
                         struct outputs *o)
{
    int rc = 0;
    if (o->csv && fclose(o->csv) != 0) {
        fprintf(stderr, "convbn-bench: cannot write %s\n", opt->csv);
        rc = -1;
    }
    if (o->traces) {
        struct json_object *root = json_root(opt, clk, o->traces);
        int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
        if (json_object_to_file_ext(opt->json, root, flags) != 0) {
            fprintf(stderr, "convbn-bench: cannot write %s\n", opt->json);
            rc = -1;
        }
        json_object_put(root);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct bench_options opt = {.iterations = 5, .warmup = 1, .seed = 1,
                                .max_ops = DEFAULT_MAX_OPS};
    struct shim_api shim;
    struct bench_clock clk = {0};
    struct outputs out;
    char err[BENCH_ERR];
    int first = parse_args(argc, argv, &opt), rc = 0;
    if (first <= 0)
        return first == 0 ? 0 : EXIT_ERROR;
    if (find_shim(&opt, &shim))
        return EXIT_ERROR;
    if (!opt.summary && clock_open(&clk, err)) {
        fprintf(stderr, "convbn-bench: %s\n", err);
        clock_close(&clk);
        return EXIT_ERROR;
    }
    if (open_outputs(&opt, &out))
        return EXIT_ERROR;
    for (int i = first; rc == 0 && i < argc; i++)
        rc = run_trace(argv[i], &shim, &opt, &clk, &out);
    rc = close_outputs(&opt, &clk, &out) || rc;
    clock_close(&clk);
    if (rc)
        return EXIT_ERROR;
    if (out.mismatches)
        fprintf(stderr, "convbn-bench: %zu pair outputs disagree with baseline beyond tolerance\n",
                out.mismatches);
    return out.mismatches ? EXIT_MISMATCH : 0;
}
