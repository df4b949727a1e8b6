/* SPIR-V compute kernels as a file format: validation (SPIRV-Tools'
 * validator, for the Vulkan 1.1 environment) and a small reflection of what
 * a kernel expects from its caller (descriptor bindings, push constant
 * bytes, workgroup size, specialization constants).
 *
 * A model library carries SPIR-V blobs: they come from outside and are
 * checked here before the engine hands them to a driver, since a driver
 * trusts what it is given. Reflection reads only what it needs and refuses
 * what the engine cannot bind (descriptor arrays, sets other than 0). */
#ifndef MLC_SPIRV_H
#define MLC_SPIRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPIRV_MAGIC 0x07230203u
#define SPIRV_MAX_BINDINGS 32
#define SPIRV_MAX_SPEC 64
#define SPIRV_MAX_WORDS (4u << 20)    /* 16 MiB: far above any kernel */

enum spirv_descriptor {
    SPIRV_STORAGE_BUFFER,       /* buffer block in StorageBuffer (or Uniform + BufferBlock) */
    SPIRV_UNIFORM_BUFFER,       /* block in Uniform */
    SPIRV_UNIFORM_TEXEL_BUFFER, /* samplerBuffer: read with texelFetch */
    SPIRV_STORAGE_TEXEL_BUFFER, /* imageBuffer: imageLoad/imageStore */
};

struct spirv_binding {
    uint32_t binding;
    enum spirv_descriptor type;
};

struct spirv_spec {
    uint32_t id;                /* SpecId */
    uint32_t default_bits;      /* default value (32-bit scalars only) */
};

struct spirv_info {
    int nbindings;              /* sorted by binding number */
    struct spirv_binding bindings[SPIRV_MAX_BINDINGS];
    uint32_t push_bytes;        /* size of the push constant block, 0 if none */
    uint32_t local_size[3];     /* workgroup size at the defaults */
    int local_size_spec[3];     /* SpecId giving each dimension, -1 if fixed */
    int nspec;                  /* specialization constants left, sorted by id */
    struct spirv_spec spec[SPIRV_MAX_SPEC];
};

const char *spirv_descriptor_name(enum spirv_descriptor d);

/* SPIRV-Tools' validator; -1 with "WHAT: invalid SPIR-V: <diagnostic>". */
int spirv_validate(const uint32_t *words, size_t nwords, const char *what);
/* One GLCompute entry point named "main" and what it binds; -1 naming WHAT
 * and the problem (a malformed instruction stream included). */
int spirv_reflect(const uint32_t *words, size_t nwords, struct spirv_info *out, const char *what);

#endif
