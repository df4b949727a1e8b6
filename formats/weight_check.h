/* Cheap structural checks of weight files, done on every model directory
 * before a stage trusts it: they read headers only, so they catch truncated
 * downloads, HTML error pages saved under a weight name and indexes that do
 * not match their files, without reading gigabytes. Messages name the file
 * as `display` (a path or "SOURCE: name"). */
#ifndef MLC_WEIGHT_CHECK_H
#define MLC_WEIGHT_CHECK_H

#include <jansson.h>
#include <stdint.h>

/* What a safetensors header declares. */
struct st_header {
    char **names;          /* tensor names, sorted */
    size_t ntensors;
    uint64_t data_bytes;   /* size of the data section = sum of tensor sizes */
};

/* Parse the header of a safetensors file and check it against the file:
 * header length inside the file, a JSON object of tensors with known dtypes,
 * shapes whose byte size matches data_offsets, spans that tile the data
 * section exactly (as the safetensors library requires) and end at the end
 * of the file. */
int safetensors_check(const char *path, const char *display, struct st_header *out);
void st_header_free(struct st_header *h);

/* A PyTorch checkpoint starts as a zip archive (torch.save since 1.6) or a
 * pickle (the legacy format). */
int torch_check_magic(const char *path, const char *display);

/* The bytes one element of a safetensors dtype ("F32", "BF16", ...) takes;
 * 0 if unknown. */
unsigned safetensors_dtype_size(const char *dtype);

#endif
