/* Feeds files to LLVMFuzzerTestOneInput without libFuzzer, so `make check` can replay the
 * fuzz corpus (bench/fuzz-corpus/) through the trace reader with any C compiler.
 * usage: fuzz_replay_main FILE_OR_DIR...   Prints how many inputs ran; exit 0, or 2 when
 * an input cannot be read (a broken reader promise traps instead). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long size = -1;
    uint8_t *data = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)size + 1)) && fread(data, 1, (size_t)size, f) == (size_t)size) {
        LLVMFuzzerTestOneInput(data, (size_t)size);
    } else {
        size = -1;
    }
    if (f)
        fclose(f);
    free(data);
    if (size < 0)
        fprintf(stderr, "fuzz_replay_main: cannot read %s\n", path);
    return size < 0 ? -1 : 0;
}

/* Runs path, or every regular file in it when it is a directory; returns inputs run or -1. */
static long run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return run_file(path) == 0 ? 1 : -1;
    DIR *dir = opendir(path);
    long n = 0;
    if (!dir)
        return -1;
    for (struct dirent *e; n >= 0 && (e = readdir(dir));) {
        char child[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        n = run_file(child) == 0 ? n + 1 : -1;
    }
    closedir(dir);
    return n;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = run_path(argv[i]);
        if (n < 0)
            return 2;
        total += n;
    }
    printf("fuzz corpus: %ld inputs through the trace reader, no failure\n", total);
    return 0;
}
