/* Invariant 5 (cheap when idle): a program that never touches CUDA, run with the shim
 * preloaded, must end normally with no libcudnn, libcudart or libcuda mapped.  The program
 * also checks that the shim itself IS mapped, so a run without LD_PRELOAD cannot pass.
 * Exit status: 0 when the maps are as expected, 1 otherwise. */
#include <stdio.h>
#include <string.h>

int main(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int shim_seen = 0, cuda_seen = 0;
    if (!maps) {
        perror("/proc/self/maps");
        return 1;
    }
    while (fgets(line, sizeof line, maps)) {
        if (strstr(line, "libconvbn_shim.so"))
            shim_seen = 1;
        if (strstr(line, "libcudnn") || strstr(line, "libcudart") || strstr(line, "libcuda.so")) {
            fprintf(stderr, "no_cuda: unexpected mapping: %s", line);
            cuda_seen = 1;
        }
    }
    fclose(maps);
    if (!shim_seen)
        fprintf(stderr, "no_cuda: the shim is not mapped (run with LD_PRELOAD)\n");
    return shim_seen && !cuda_seen ? 0 : 1;
}
