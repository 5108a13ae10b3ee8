/* A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs and
 * pipes stay clean).  Owns the state of the one bar that can be active. */
#include <stdio.h>
#include <unistd.h>

#include "bench.h"

#define BAR_WIDTH 30

static struct {
    int active;
    const char *label;
    size_t steps, done;
} bar;

static void draw(void)
{
    size_t filled = bar.steps ? bar.done * BAR_WIDTH / bar.steps : BAR_WIDTH;
    fprintf(stderr, "\r[");
    for (size_t i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? '#' : ' ', stderr);
    fprintf(stderr, "] %zu/%zu  %.50s", bar.done, bar.steps, bar.label);
    fflush(stderr);
}

void progress_begin(const char *label, size_t steps)
{
    bar.active = isatty(STDERR_FILENO);
    bar.label = label;
    bar.steps = steps;
    bar.done = 0;
    if (bar.active)
        draw();
}

void progress_step(void)
{
    bar.done++;
    if (bar.active)
        draw();
}

void progress_end(void)
{
    if (bar.active)
        fprintf(stderr, "\r%*s\r", BAR_WIDTH + 80, "");
    bar.active = 0;
}
