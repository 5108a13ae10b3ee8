/* Internal definitions shared by the CPU emulation of the CUDA runtime (tests/emu/cudart_*.c).
 *
 * The emulation keeps its state in sorted tables keyed by address (allocations, streams,
 * events, kernels), each behind its own mutex; every API function validates its handles
 * against those tables, never by dereferencing them.  Work runs synchronously on the calling
 * thread, so streams and events only carry what their query functions report.  Nothing here
 * is exported: only CUDA runtime names and the emu_cudart.h interface leave the library. */
#ifndef CONVBN_EMU_CUDART_INTERNAL_H
#define CONVBN_EMU_CUDART_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "emu_cudart.h"

#define EMU_HIDDEN __attribute__((visibility("hidden")))

/* Exports `variant` (a `_ptsz` / `_ptds` name) as another name for `target`, defined in the
 * same file. */
#define EMU_PER_THREAD_ALIAS(variant, target) \
    extern __typeof__(target) variant __attribute__((alias(#target)))

/* The one emulated device. */
#define EMU_DEVICE_ORDINAL 0
#define EMU_DEVICE_TOTAL_MEM ((size_t)16 << 30)
#define EMU_DEVICE_MAX_PITCH ((size_t)INT32_MAX)
#define EMU_MAX_THREADS_PER_BLOCK 1024
#define EMU_MAX_BLOCK_DIM_XY 1024
#define EMU_MAX_BLOCK_DIM_Z 64
#define EMU_MAX_GRID_DIM_X 2147483647
#define EMU_MAX_GRID_DIM_YZ 65535

/* One table entry: a key (an address), the span of addresses it covers (1 for handles), a
 * small kind tag and the object it stands for (owned by whoever inserted it). */
struct emu_entry {
    uintptr_t key;
    size_t span;
    int kind;
    void *object;
};

/* Entries sorted by key, non-overlapping; guarded by lock. */
struct emu_table {
    pthread_mutex_t lock;
    struct emu_entry *entries;
    size_t count;
    size_t capacity;
};

#define EMU_TABLE_INITIALIZER { PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0 }

/* Take and release the table's mutex (blocking; nothing is returned). */
EMU_HIDDEN void emu_table_lock(struct emu_table *table);
EMU_HIDDEN void emu_table_unlock(struct emu_table *table);

/* The find, insert and erase functions require the caller to hold table->lock.  Returned
 * entry pointers stay valid until the next insert or erase. */

/* Returns the entry whose key is exactly key, or NULL. */
EMU_HIDDEN struct emu_entry *emu_table_find(struct emu_table *table, uintptr_t key);

/* Returns the entry whose [key, key + span) contains address, or NULL. */
EMU_HIDDEN struct emu_entry *emu_table_find_containing(struct emu_table *table,
                                                       uintptr_t address);

/* Inserts a new entry (key must not be present).  Returns 0, or -1 when out of memory. */
EMU_HIDDEN int emu_table_insert(struct emu_table *table, struct emu_entry entry);

/* Removes entry (a pointer returned by a find) from the table. */
EMU_HIDDEN void emu_table_erase(struct emu_table *table, struct emu_entry *entry);

/* Takes the lock itself: removes every entry, calling release on each first, and frees the
 * table's storage. */
EMU_HIDDEN void emu_table_clear(struct emu_table *table, void (*release)(struct emu_entry *));

/* Records status as the calling thread's last error when it is not cudaSuccess.  Returns
 * status, so API functions end with `return emu_status(...)`. */
EMU_HIDDEN cudaError_t emu_status(cudaError_t status);

/* Returns cudaSuccess when stream is a built-in stream (NULL, cudaStreamLegacy,
 * cudaStreamPerThread) or a live created stream, else cudaErrorInvalidResourceHandle.
 * Does not touch the last error. */
EMU_HIDDEN cudaError_t emu_stream_check(cudaStream_t stream);

/* Returns cudaSuccess when event is a live created event, else
 * cudaErrorInvalidResourceHandle.  Does not touch the last error. */
EMU_HIDDEN cudaError_t emu_event_check(cudaEvent_t event);

/* cudaDeviceReset support: each frees every object of its kind and empties its table. */
EMU_HIDDEN void emu_memory_reset(void);
EMU_HIDDEN void emu_stream_reset(void);
EMU_HIDDEN void emu_event_reset(void);

#endif
