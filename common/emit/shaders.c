#include "common/emit/shaders.h"

#include <string.h>

const struct shader_blob *shader_find(const char *name)
{
    for (size_t i = 0; i < shader_blob_count; i++)
        if (!strcmp(shader_blobs[i].name, name)) return &shader_blobs[i];
    return NULL;
}
