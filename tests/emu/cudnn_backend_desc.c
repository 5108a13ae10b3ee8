/* Backend descriptors of the cuDNN emulation: cudnnBackendCreateDescriptor, Destroy,
 * Initialize, SetAttribute, GetAttribute and Finalize, driven by the per-type attribute
 * tables of cudnn_backend_types.c.  Owns the descriptor objects: a header (type, finalized
 * flag) followed by the type's payload.  Descriptor-valued attributes are stored as copies
 * of the value's payload, and reading one copies the payload back into a descriptor the
 * caller created, which becomes finalized (cuDNN's convention for filling heuristics results
 * and engines).  A descriptor can be set until it is finalized and read only afterwards.
 * Computes nothing; validation beyond attribute types and counts is the types' finalize. */
#include <stdlib.h>
#include <string.h>

#include "emu_cudnn.h"

#define EMU_BK_MAGIC 0x424b4e44u /* "BKND" */

struct emu_backend {
    uint32_t magic;
    int finalized;
    const struct emu_bk_type *info;
    max_align_t payload[];
};

/* Returns the live descriptor behind d, or NULL with *status set. */
static struct emu_backend *resolve(cudnnBackendDescriptor_t d, cudnnStatus_t *status)
{
    struct emu_backend *b = d;
    if (!b) {
        *status = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
        return NULL;
    }
    if (b->magic != EMU_BK_MAGIC) {
        *status = CUDNN_STATUS_BAD_PARAM;
        return NULL;
    }
    return b;
}

static int attr_index(const struct emu_bk_type *t, cudnnBackendAttributeName_t name)
{
    for (int i = 0; i < t->nb_attrs; i++)
        if (t->attrs[i].name == name)
            return i;
    return -1;
}

int emu_bk_count(const struct emu_bk_type *t, const void *payload,
                 cudnnBackendAttributeName_t name)
{
    int i = attr_index(t, name);
    const struct emu_bk_counts *c = payload;
    return i >= 0 && (c->was_set >> i & 1u) ? c->n[i] : 0;
}

void emu_bk_mark_set(const struct emu_bk_type *t, void *payload,
                     cudnnBackendAttributeName_t name, int count)
{
    int i = attr_index(t, name);
    struct emu_bk_counts *c = payload;
    c->was_set |= (uint16_t)(1u << i);
    c->n[i] = (uint8_t)count;
}

/* Elements attribute i of payload reads as: derived ones always hold max_count. */
static int readable_count(const struct emu_bk_type *t, const void *payload, int i)
{
    const struct emu_bk_attr *a = &t->attrs[i];
    const struct emu_bk_counts *c = payload;
    if (!(a->flags & EMU_BK_SET))
        return a->max_count;
    if (c->was_set >> i & 1u)
        return c->n[i];
    return a->flags & EMU_BK_DEFAULT ? 1 : 0;
}

/* Stored bytes of one element of a. */
static size_t stored_size(const struct emu_bk_attr *a)
{
    switch (a->kind) {
    case EMU_BK_WORD: return sizeof(int32_t);
    case EMU_BK_INT64: return sizeof(int64_t);
    case EMU_BK_BOOL: return sizeof(bool);
    case EMU_BK_REAL: return sizeof(double);
    case EMU_BK_HANDLE:
    case EMU_BK_POINTER: return sizeof(void *);
    default:
        return a->target == EMU_BK_ANY_OPERATION ? sizeof(struct emu_bk_op)
                                                 : emu_bk_type_info(a->target)->payload_size;
    }
}

static int type_matches(const struct emu_bk_attr *a, cudnnBackendAttributeType_t type)
{
    if (a->kind == EMU_BK_REAL)
        return type == CUDNN_TYPE_FLOAT || type == CUDNN_TYPE_DOUBLE;
    return type == a->type;
}

/* Values the enumerated attribute types accept (INT32 and pointwise modes: any). */
static int word_valid(cudnnBackendAttributeType_t type, int32_t v)
{
    switch (type) {
    case CUDNN_TYPE_DATA_TYPE: return emu_descriptor_type_size((cudnnDataType_t)v) != 0;
    case CUDNN_TYPE_CONVOLUTION_MODE:
    case CUDNN_TYPE_NAN_PROPOGATION:
    case CUDNN_TYPE_NORM_FWD_PHASE: return v == 0 || v == 1;
    case CUDNN_TYPE_HEUR_MODE: return v >= 0 && v < CUDNN_HEUR_MODES_COUNT;
    case CUDNN_TYPE_NORM_MODE: return v >= CUDNN_LAYER_NORM && v <= CUDNN_ADA_LAYER_NORM;
    case CUDNN_TYPE_KNOB_TYPE: return v >= 0 && v < CUDNN_KNOB_TYPE_COUNTS;
    case CUDNN_TYPE_TENSOR_REORDERING_MODE: return v >= 0 && v <= CUDNN_TENSOR_REORDERING_F8_128x4;
    default: return 1;
    }
}

/* Checks the elements of a set before anything is stored. */
static cudnnStatus_t check_elements(const struct emu_bk_attr *a, int64_t n, const void *in)
{
    for (int64_t i = 0; i < n; i++) {
        if (a->kind == EMU_BK_WORD && !word_valid(a->type, ((const int32_t *)in)[i]))
            return CUDNN_STATUS_BAD_PARAM;
        if (a->kind == EMU_BK_BOOL && ((const unsigned char *)in)[i] > 1)
            return CUDNN_STATUS_BAD_PARAM;
        if (a->kind == EMU_BK_HANDLE && !emu_handle_valid(((const cudnnHandle_t *)in)[i]))
            return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* Returns 1 if a descriptor of type `type` may be stored in attribute a. */
static int target_accepts(const struct emu_bk_attr *a, int type)
{
    return a->target == EMU_BK_ANY_OPERATION ? emu_bk_is_operation(type) : a->target == type;
}

/* Resolves the n descriptors of a set; all must be finalized and of a's target type. */
static cudnnStatus_t resolve_values(const struct emu_bk_attr *a, int64_t n,
                                    const cudnnBackendDescriptor_t *in,
                                    struct emu_backend **out)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    for (int64_t i = 0; i < n; i++) {
        if (!(out[i] = resolve(in[i], &status)))
            return status;
        if (!target_accepts(a, (int)out[i]->info->type))
            return CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE;
        if (!out[i]->finalized)
            return CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED;
    }
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t store_descriptors(const struct emu_bk_attr *a, unsigned char *field,
                                       int64_t n, const void *in)
{
    struct emu_backend *values[CUDNN_KNOB_TYPE_COUNTS];
    cudnnStatus_t status = resolve_values(a, n, in, values);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    for (int64_t i = 0; i < n; i++)
        memcpy(field + (size_t)i * stored_size(a), values[i]->payload, stored_size(a));
    return CUDNN_STATUS_SUCCESS;
}

static void store_reals(cudnnBackendAttributeType_t type, double *field, int64_t n,
                        const void *in)
{
    for (int64_t i = 0; i < n; i++)
        field[i] = type == CUDNN_TYPE_FLOAT ? ((const float *)in)[i] : ((const double *)in)[i];
}

static cudnnStatus_t store(const struct emu_bk_attr *a, void *payload,
                           cudnnBackendAttributeType_t type, int64_t n, const void *in)
{
    unsigned char *field = (unsigned char *)payload + a->offset;
    if (a->kind == EMU_BK_DESC)
        return store_descriptors(a, field, n, in);
    cudnnStatus_t status = check_elements(a, n, in);
    if (status != CUDNN_STATUS_SUCCESS)
        return status;
    if (a->kind == EMU_BK_REAL)
        store_reals(type, (double *)field, n, in);
    else if (n > 0)
        memcpy(field, in, (size_t)n * stored_size(a));
    return CUDNN_STATUS_SUCCESS;
}

/* The descriptor type element i of a holds (operations know their own kind). */
static int element_type(const struct emu_bk_attr *a, const unsigned char *element)
{
    return a->target == EMU_BK_ANY_OPERATION ? ((const struct emu_bk_op *)element)->kind
                                             : a->target;
}

/* Copies n stored payloads into the caller's descriptors, which become finalized. */
static cudnnStatus_t load_descriptors(const struct emu_bk_attr *a, const unsigned char *field,
                                      int64_t n, cudnnBackendDescriptor_t *out)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    size_t size = stored_size(a);
    for (int64_t i = 0; i < n; i++) {
        struct emu_backend *d = resolve(out[i], &status);
        if (!d)
            return status;
        if ((int)d->info->type != element_type(a, field + (size_t)i * size))
            return CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE;
    }
    for (int64_t i = 0; i < n; i++) {
        struct emu_backend *d = out[i];
        memcpy(d->payload, field + (size_t)i * size, size);
        d->finalized = 1;
    }
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t load(const struct emu_bk_attr *a, const void *payload,
                          cudnnBackendAttributeType_t type, int64_t n, void *out)
{
    const unsigned char *field = (const unsigned char *)payload + a->offset;
    if (a->kind == EMU_BK_DESC)
        return load_descriptors(a, field, n, out);
    for (int64_t i = 0; a->kind == EMU_BK_REAL && i < n; i++) {
        double v = ((const double *)field)[i];
        if (type == CUDNN_TYPE_FLOAT)
            ((float *)out)[i] = (float)v;
        else
            ((double *)out)[i] = v;
    }
    if (a->kind != EMU_BK_REAL && n > 0)
        memcpy(out, field, (size_t)n * stored_size(a));
    return CUDNN_STATUS_SUCCESS;
}

/* Creates an unfinalized descriptor of descriptorType with every attribute unset; the
 * caller owns it (cudnnBackendDestroyDescriptor).  Types the emulation lacks are
 * CUDNN_STATUS_NOT_SUPPORTED. */
cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t descriptorType,
                                           cudnnBackendDescriptor_t *descriptor)
{
    const struct emu_bk_type *info = emu_bk_type_info(descriptorType);
    if (!descriptor)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    if (!info)
        return CUDNN_STATUS_NOT_SUPPORTED;
    struct emu_backend *d = calloc(1, sizeof *d + info->payload_size);
    if (!d)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    d->magic = EMU_BK_MAGIC;
    d->info = info;
    if (info->init)
        info->init(d->payload, descriptorType);
    *descriptor = d;
    return CUDNN_STATUS_SUCCESS;
}

/* Frees a descriptor; NULL is accepted.  Descriptors it was copied into are unaffected. */
cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t descriptor)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    struct emu_backend *d = descriptor ? resolve(descriptor, &status) : NULL;
    if (d) {
        d->magic = 0;
        free(d);
    }
    return status;
}

/* The cuDNN 9 form of this deprecated call is not emulated: CUDNN_STATUS_NOT_SUPPORTED for
 * any live descriptor. */
cudnnStatus_t cudnnBackendInitialize(cudnnBackendDescriptor_t descriptor)
{
    cudnnStatus_t status = CUDNN_STATUS_NOT_SUPPORTED;
    resolve(descriptor, &status);
    return status;
}

/* Checks a set's attribute, type and count against the descriptor's table. */
static cudnnStatus_t check_set(const struct emu_backend *d, const struct emu_bk_attr *a,
                               cudnnBackendAttributeType_t type, int64_t n, const void *in)
{
    if (d->finalized)
        return CUDNN_STATUS_NOT_INITIALIZED;
    if (!a || !(a->flags & EMU_BK_SET))
        return CUDNN_STATUS_BAD_PARAM;
    if (!type_matches(a, type))
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    if (n > a->max_count && (a->flags & EMU_BK_CAPPED))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (n < a->min_count || n > a->max_count)
        return CUDNN_STATUS_BAD_PARAM;
    return n > 0 && !in ? CUDNN_STATUS_BAD_PARAM_NULL_POINTER : CUDNN_STATUS_SUCCESS;
}

/* Stores elementCount elements of attributeType as attribute attributeName.  Returns
 * NOT_INITIALIZED once the descriptor is finalized, BAD_PARAM for an attribute the type
 * lacks or cannot set, BAD_PARAM_ATTRIBUTE_TYPE for the wrong type, BAD_PARAM for a count
 * or value cuDNN rejects, and the BAD_PARAM codes of emu_bk_finalized for descriptor
 * values.  The caller keeps owning arrayOfElements and the descriptors in it. */
cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t descriptor,
                                       cudnnBackendAttributeName_t attributeName,
                                       cudnnBackendAttributeType_t attributeType,
                                       int64_t elementCount, const void *arrayOfElements)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    struct emu_backend *d = resolve(descriptor, &status);
    if (!d)
        return status;
    int i = attr_index(d->info, attributeName);
    const struct emu_bk_attr *a = i >= 0 ? &d->info->attrs[i] : NULL;
    status = check_set(d, a, attributeType, elementCount, arrayOfElements);
    if (status == CUDNN_STATUS_SUCCESS)
        status = store(a, d->payload, attributeType, elementCount, arrayOfElements);
    if (status == CUDNN_STATUS_SUCCESS)
        emu_bk_mark_set(d->info, d->payload, attributeName, (int)elementCount);
    return status;
}

/* Reads up to requestedElementCount elements of attribute attributeName into
 * arrayOfElements (owned by the caller; for descriptor values, descriptors the caller
 * created, of the right type) and the number the attribute holds into *elementCount when
 * that is not NULL.  Returns NOT_INITIALIZED before finalization, BAD_PARAM for an attribute
 * the type lacks or a negative count, BAD_PARAM_ATTRIBUTE_TYPE for the wrong type. */
cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const descriptor,
                                       cudnnBackendAttributeName_t attributeName,
                                       cudnnBackendAttributeType_t attributeType,
                                       int64_t requestedElementCount, int64_t *elementCount,
                                       void *arrayOfElements)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    struct emu_backend *d = resolve(descriptor, &status);
    if (!d)
        return status;
    if (!d->finalized)
        return CUDNN_STATUS_NOT_INITIALIZED;
    int i = attr_index(d->info, attributeName);
    if (i < 0 || requestedElementCount < 0)
        return CUDNN_STATUS_BAD_PARAM;
    const struct emu_bk_attr *a = &d->info->attrs[i];
    if (!type_matches(a, attributeType))
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    int64_t held = readable_count(d->info, d->payload, i);
    int64_t n = requestedElementCount < held ? requestedElementCount : held;
    if (n > 0 && !arrayOfElements)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    status = load(a, d->payload, attributeType, n, arrayOfElements);
    if (status == CUDNN_STATUS_SUCCESS && elementCount)
        *elementCount = held;
    return status;
}

/* Validates the descriptor and makes it read-only.  Returns BAD_PARAM for a descriptor that
 * is already finalized or lacks a required attribute, otherwise the type's finalize status;
 * on failure the descriptor stays settable. */
cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t descriptor)
{
    cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
    struct emu_backend *d = resolve(descriptor, &status);
    if (!d)
        return status;
    if (d->finalized)
        return CUDNN_STATUS_BAD_PARAM;
    const struct emu_bk_counts *c = (const void *)d->payload;
    for (int i = 0; i < d->info->nb_attrs; i++)
        if ((d->info->attrs[i].flags & EMU_BK_REQUIRED) && !(c->was_set >> i & 1u))
            return CUDNN_STATUS_BAD_PARAM;
    status = d->info->finalize ? d->info->finalize(d->payload) : CUDNN_STATUS_SUCCESS;
    d->finalized = status == CUDNN_STATUS_SUCCESS;
    return status;
}

const void *emu_bk_finalized(cudnnBackendDescriptor_t d, int type, cudnnStatus_t *status)
{
    struct emu_backend *b = resolve(d, status);
    if (!b)
        return NULL;
    if ((int)b->info->type != type) {
        *status = CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE;
        return NULL;
    }
    if (!b->finalized) {
        *status = CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED;
        return NULL;
    }
    return b->payload;
}
