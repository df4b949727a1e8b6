/* The compute kernels shipped with mlc-pipe: every shaders/NAME.comp,
 * compiled to SPIR-V by glslc at build time and embedded in the library
 * (scripts/embed-shaders writes the table). */
#ifndef MLC_SHADERS_H
#define MLC_SHADERS_H

#include <stddef.h>
#include <stdint.h>

struct shader_blob {
    const char *name;          /* NAME of shaders/NAME.comp */
    const uint32_t *words;
    size_t nwords;
};

extern const struct shader_blob shader_blobs[];
extern const size_t shader_blob_count;

/* The shipped kernel NAME, or NULL. */
const struct shader_blob *shader_find(const char *name);

#endif
