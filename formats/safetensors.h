/* safetensors files, mmap'ed and validated strictly: header size bounded,
 * JSON well formed with no duplicate names, every dtype known, every
 * shape x itemsize equal to its span, spans inside the file and tiling the
 * data section in order with no gap and no overlap. */
#ifndef MLC_SAFETENSORS_H
#define MLC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

#define ST_MAX_DIMS 8
/* the reference implementation's own limit */
#define ST_MAX_HEADER (100u << 20)

struct st_tensor {
    char *name;
    const char *st_dtype;     /* "BF16", ... as in the file */
    enum dtype dtype;         /* DT_INVALID for dtypes mlc-pipe does not convert */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;      /* within the data section */
};

struct st_file {
    char *path;
    const unsigned char *map; /* whole file */
    size_t size;
    const unsigned char *data;/* data section */
    size_t data_len;
    struct st_tensor *tensors;/* in header order */
    size_t ntensors;
};

/* -1 with "PATH: what" (naming the tensor and field) on any defect. */
int st_open(struct st_file *f, const char *path);
void st_close(struct st_file *f);
/* Give the pages of a tensor back to the kernel after use (they stay in the
 * page cache), so that reading a whole model does not grow the RSS. */
void st_release(const struct st_file *f, const struct st_tensor *t);

#endif
