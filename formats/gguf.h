/* GGUF files (llama.cpp's model format, ggml's docs/gguf.md), read
 * strictly: the header, every metadata key and value, and the tensor table
 * are bounds-checked against the bytes actually present, with overflow-safe
 * arithmetic. Counts, string lengths and array lengths are judged against
 * what is left of the file before anything is allocated; tensor types must
 * be known, dimensions must multiply without overflow and fill whole
 * blocks, and every tensor's bytes must lie inside the data section,
 * aligned, without overlapping another.
 *
 *   struct gguf g;
 *   if (gguf_open(&g, "model.gguf") != 0) die_last();
 *   const struct gguf_kv *kv = gguf_find(&g, "general.architecture");
 *   ... g.tensors[i].name, .type, .ne[], gguf_tensor_bytes(&g, &g.tensors[i]) ...
 *   gguf_close(&g);
 *
 * gguf_parse() reads a buffer in memory (nothing is copied out of it
 * except names, so it must outlive the struct): the entry point for
 * fuzzing (gguf_fuzz_one). Errors are one line: "FILE: FIELD: what". */
#ifndef MLC_GGUF_H
#define MLC_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12,
};

/* ggml's tensor types (the ones with a fixed block layout). */
enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12,
    GGML_Q5_K = 13, GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_I8 = 24, GGML_I16 = 25,
    GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_BF16 = 30,
};

struct gguf_str {
    const char *s;               /* inside the buffer; not NUL-terminated */
    uint64_t len;
};

struct gguf_value {
    enum gguf_vtype type;
    union {
        uint64_t u;              /* U8..U64, BOOL */
        int64_t i;               /* I8..I64 */
        double f;                /* F32, F64 */
        struct gguf_str str;
    };
    /* arrays (type GGUF_ARRAY): elements of one scalar or string type */
    enum gguf_vtype elem_type;
    uint64_t count;
    const unsigned char *elems;  /* scalars: little-endian, packed */
    struct gguf_str *strs;       /* string arrays: one per element */
};

struct gguf_kv {
    char *key;
    struct gguf_value v;
};

struct gguf_tensor {
    char *name;
    enum ggml_type type;
    int ndim;
    uint64_t ne[GGUF_MAX_DIMS];  /* ne[0] is the innermost (contiguous) dimension */
    uint64_t numel;
    uint64_t offset;             /* from the start of the buffer */
    uint64_t nbytes;
};

struct gguf {
    char *path;                  /* as messages name it */
    const unsigned char *map;
    size_t size;
    bool mapped;                 /* map came from gguf_open's mmap */
    uint32_t version;
    struct gguf_kv *kvs;         /* in file order */
    size_t nkv;
    struct gguf_tensor *tensors; /* in file order */
    size_t ntensors;
    uint64_t alignment;
    uint64_t data_start;
};

int gguf_parse(struct gguf *g, const void *data, size_t size, const char *name);
int gguf_open(struct gguf *g, const char *path);
void gguf_close(struct gguf *g);

/* True when the file starts with GGUF's magic. */
bool gguf_has_magic(const void *data, size_t size);

const char *ggml_type_name(enum ggml_type t);   /* "Q4_K", or NULL when unknown */
/* Elements per block and bytes per block; false for an unknown type. */
bool ggml_type_block(enum ggml_type t, uint64_t *block, uint64_t *bytes);

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);
const unsigned char *gguf_tensor_bytes(const struct gguf *g, const struct gguf_tensor *t);

/* Typed lookups. 1 when found and converted, 0 when absent, -1 (with a
 * message naming the key) when present with the wrong type or out of range. */
int gguf_get_uint(const struct gguf *g, const char *key, uint64_t *out);
int gguf_get_float(const struct gguf *g, const char *key, double *out);
int gguf_get_bool(const struct gguf *g, const char *key, bool *out);
/* A NUL-terminated copy (caller frees); strings holding NUL are refused. */
int gguf_get_string(const struct gguf *g, const char *key, char **out);
/* An array of the given element kind: 's' strings, 'i' integers, 'f' floats. */
int gguf_get_array(const struct gguf *g, const char *key, char kind, const struct gguf_value **out);
/* Element i of an integer or float array, as a double / int64. */
double gguf_array_float(const struct gguf_value *v, uint64_t i);
int64_t gguf_array_int(const struct gguf_value *v, uint64_t i);

/* Dequantize n elements (a whole number of blocks) of type t to float32:
 * F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K, as ggml defines their blocks.
 * False for another type (nothing written). In gguf_dequant.c. */
bool ggml_supported(enum ggml_type t);
bool ggml_to_f32(enum ggml_type t, const void *src, float *dst, uint64_t n);
/* True for the block-quantized types (converting them is lossy). */
bool ggml_is_quantized(enum ggml_type t);

/* The fuzzing entry point (libFuzzer's LLVMFuzzerTestOneInput shape):
 * parses the buffer and, when it parses, runs everything that reads the
 * metadata (the HuggingFace config, tensor names, the tokenizer rebuild).
 * Always returns 0; errors are expected and simply recorded. */
int gguf_fuzz_one(const uint8_t *data, size_t size);

#endif
