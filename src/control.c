/* The public control call that changes the shim's behaviour at run time
 * (include/convbn/convbn.h): switching the mode, for programs such as the bench that
 * compare modes in one process.  Owns no state: the mode lives in convbn_cfg (entry.c) and
 * pending work in the planner, which it flushes before the switch. */
#include <string.h>

#include "convbn/convbn.h"
#include "convbn/planner.h"
#include "convbn/shim.h"

__attribute__((visibility("default"))) int convbn_set_mode(const char *mode)
{
    static const enum convbn_mode modes[] = {CONVBN_MODE_OFF, CONVBN_MODE_OBSERVE,
                                             CONVBN_MODE_AUTO, CONVBN_MODE_FUSE};
    for (size_t i = 0; mode && i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(mode, convbn_mode_name(modes[i])) != 0)
            continue;
        convbn_init();
        convbn_guard_enter();
        convbn_planner_flush_all("mode change");
        convbn_guard_leave();
        __atomic_store_n(&convbn_cfg.mode, modes[i], __ATOMIC_RELAXED);
        return 0;
    }
    return -1;
}
