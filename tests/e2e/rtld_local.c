/* DESIGN.md section 5a: a program that reaches cuDNN only through a middle library opened
 * with RTLD_LOCAL, as Python does with extension modules.  The shim must still find the
 * real functions (dlsym(RTLD_NEXT) cannot) and report the pair.
 * usage: rtld_local PATH/libmiddle.so   Exit 0 when the pair was seen (or no shim and the
 * pair ran), 1 on a failed expectation, 2 on errors. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "convbn/convbn.h"

/* Returns 1 if an object whose path contains name is mapped into this process. */
static int mapped(const char *name)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (maps && !found && fgets(line, sizeof line, maps))
        found = strstr(line, name) != NULL;
    if (maps)
        fclose(maps);
    return found;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rtld_local PATH/libmiddle.so\n");
        return 2;
    }
    if (mapped("libcudnn")) {
        fprintf(stderr, "rtld_local: libcudnn is already global; the test would prove nothing\n");
        return 2;
    }
    void *middle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!middle) {
        fprintf(stderr, "rtld_local: %s\n", dlerror());
        return 2;
    }
    int (*run_pair)(void) = (int (*)(void))dlsym(middle, "middle_run_pair");
    if (!run_pair || run_pair() != 0)
        return 2;
    int (*counters)(struct convbn_counters *, size_t) =
        (int (*)(struct convbn_counters *, size_t))dlsym(RTLD_DEFAULT, "convbn_get_counters");
    struct convbn_counters c;
    if (counters && (counters(&c, sizeof c) != 0 || c.pairs_seen != 1)) {
        fprintf(stderr, "rtld_local: shim saw %llu pairs, expected 1\n",
                (unsigned long long)c.pairs_seen);
        return 1;
    }
    printf("rtld_local: pair ran%s\n", counters ? " and was seen by the shim" : "");
    return 0;
}
