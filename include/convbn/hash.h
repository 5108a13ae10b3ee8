/* A word-at-a-time hash for uthash keys that are plain structs of ints (geometry), much
 * cheaper than uthash's byte-wise default on the ~260-byte keys the shim uses.  Include
 * this before <uthash.h>. */
#ifndef CONVBN_HASH_H
#define CONVBN_HASH_H

#include <stdint.h>
#include <string.h>

/* Returns a 32-bit hash of len bytes at key (any alignment). */
static inline uint32_t convbn_hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    for (; len; p++, len--)
        h = (h ^ *p) * 0x100000001b3ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = convbn_hash_bytes((keyptr), (keylen)))

#endif
