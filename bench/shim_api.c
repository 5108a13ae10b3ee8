/* The shim's public control API as the bench sees it: looked up with dlsym in the running
 * process, because the bench runs under the shim (LD_PRELOAD) and must not link against it.
 * Owns no state beyond the function pointers it returns. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "bench.h"

int shim_api_find(struct shim_api *api)
{
    *(void **)&api->set_mode = dlsym(RTLD_DEFAULT, "convbn_set_mode");
    *(void **)&api->get_counters = dlsym(RTLD_DEFAULT, "convbn_get_counters");
    *(void **)&api->reason_text = dlsym(RTLD_DEFAULT, "convbn_reason_text");
    if (api->set_mode && api->get_counters && api->reason_text)
        return 0;
    memset(api, 0, sizeof *api);
    return -1;
}

int shim_set_mode(const struct shim_api *api, const char *mode)
{
    return api && api->set_mode ? api->set_mode(mode) : 0;
}

void shim_counters(const struct shim_api *api, struct convbn_counters *out)
{
    memset(out, 0, sizeof *out);
    if (api && api->get_counters)
        api->get_counters(out, sizeof *out);
}
