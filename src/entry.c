/* Process-wide lifecycle of the shim: the one-time initialisation on the first intercepted
 * call (configuration, log, trace, exit handler), the per-thread guard and the exit summary.
 * Nothing runs at load time, so a process that never calls cuDNN pays nothing
 * (invariant 5).  Owns convbn_cfg. */
#include <stdlib.h>
#include <unistd.h>

#include "convbn/log.h"
#include "convbn/planner.h"
#include "convbn/shim.h"
#include "convbn/stats.h"
#include "convbn/trace.h"

struct convbn_config convbn_cfg;
__thread int convbn_guard_depth __attribute__((tls_model("initial-exec")));

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static const char *read_env(const char *name)
{
    return getenv(name);
}

static void warn_config(const char *message)
{
    convbn_warnf("%s", message);
}

static void at_exit(void)
{
    convbn_guard_enter();
    if (convbn_cfg.mode != CONVBN_MODE_OFF)
        convbn_planner_flush_all("exit");
    if (convbn_cfg.stats)
        convbn_stats_summary();
    convbn_trace_stop();
    convbn_guard_leave();
}

static void init_process(void)
{
    convbn_config_parse(&convbn_cfg, read_env, warn_config, (long)getpid());
    convbn_log_open(&convbn_cfg);
    convbn_trace_start(&convbn_cfg);
    atexit(at_exit);
}

void convbn_init(void)
{
    pthread_once(&init_once, init_process);
}
