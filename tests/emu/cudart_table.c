/* Sorted address tables for the CUDA runtime emulation.
 *
 * Owns the storage of struct emu_table: a growable array of entries kept sorted by key so that
 * both exact lookups (handles) and "which allocation contains this address" lookups are binary
 * searches.  It never looks inside the objects entries point to, and it never locks on its
 * own: callers take the table's lock around every call except emu_table_clear. */
#include <stdlib.h>
#include <string.h>

#include "cudart_internal.h"

void emu_table_lock(struct emu_table *table)
{
    pthread_mutex_lock(&table->lock);
}

void emu_table_unlock(struct emu_table *table)
{
    pthread_mutex_unlock(&table->lock);
}

/* Index of the first entry whose key is greater than key. */
static size_t emu_table_upper_bound(const struct emu_table *table, uintptr_t key)
{
    size_t low = 0, high = table->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (table->entries[middle].key <= key)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

struct emu_entry *emu_table_find(struct emu_table *table, uintptr_t key)
{
    size_t after = emu_table_upper_bound(table, key);
    if (after == 0 || table->entries[after - 1].key != key)
        return NULL;
    return &table->entries[after - 1];
}

struct emu_entry *emu_table_find_containing(struct emu_table *table, uintptr_t address)
{
    size_t after = emu_table_upper_bound(table, address);
    if (after == 0)
        return NULL;
    struct emu_entry *candidate = &table->entries[after - 1];
    return address - candidate->key < candidate->span ? candidate : NULL;
}

static int emu_table_reserve_one(struct emu_table *table)
{
    if (table->count < table->capacity)
        return 0;
    size_t capacity = table->capacity ? table->capacity * 2 : 64;
    struct emu_entry *entries = realloc(table->entries, capacity * sizeof *entries);
    if (!entries)
        return -1;
    table->entries = entries;
    table->capacity = capacity;
    return 0;
}

int emu_table_insert(struct emu_table *table, struct emu_entry entry)
{
    if (emu_table_reserve_one(table) != 0)
        return -1;
    size_t at = emu_table_upper_bound(table, entry.key);
    memmove(&table->entries[at + 1], &table->entries[at],
            (table->count - at) * sizeof *table->entries);
    table->entries[at] = entry;
    table->count++;
    return 0;
}

void emu_table_erase(struct emu_table *table, struct emu_entry *entry)
{
    size_t at = (size_t)(entry - table->entries);
    memmove(&table->entries[at], &table->entries[at + 1],
            (table->count - at - 1) * sizeof *table->entries);
    table->count--;
}

void emu_table_clear(struct emu_table *table, void (*release)(struct emu_entry *))
{
    emu_table_lock(table);
    for (size_t i = 0; i < table->count; i++)
        release(&table->entries[i]);
    free(table->entries);
    table->entries = NULL;
    table->count = 0;
    table->capacity = 0;
    emu_table_unlock(table);
}
