/* The lowered module (mlc-lower's output, mlc-emit's input, and the
 * execution plan inside a model library): a target-neutral graph of a
 * decoder-only transformer, one function per entry point.
 *
 * Values are SSA: every op writes new values. A value is an input or output
 * of its function, a temporary, or a parameter (a weight, possibly
 * quantized: one logical [N, K] matrix stored as several tensors of the
 * tensor cache). Shapes have at most one symbolic dimension, the function's
 * row count (seq_len for embed/prefill, batch for decode), stored with its
 * upper bound. Memory planning gives every non-parameter value an offset in
 * one activation arena, sized for the bounds.
 *
 * The module travels as a `module` record (mlc-stream(5)) and inside a
 * library as plan.msgpack; module_from_msgpack validates everything it reads
 * (it is a trust boundary: a plan may come from anywhere). */
#ifndef MLC_MODULE_H
#define MLC_MODULE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

#define MODULE_VERSION 1
#define MOD_MAX_DIMS 3
#define MOD_MAX_IN 6
#define MOD_MAX_OUT 2
#define MOD_MAX_PARTS 3

enum op_kind {
    OP_EMBED,        /* ids[n] (int32), table param [V,H] → x[n,H] */
    OP_RMS_NORM,     /* x[n,H], weight param [H] → y[n,H] */
    OP_ADD,          /* a, b → a + b */
    OP_ADD_RMS_NORM, /* a, b, weight → (a + b, rms_norm(a + b)) */
    OP_DEQUANTIZE,   /* weight param [N,K] → float32 [N,K] */
    OP_MATMUL,       /* x[n,K], weight [N,K] (param or dequantized), bias? → y[n,N] */
    OP_SILU_MUL,     /* gate_up[n,2I] → silu(gate) * up [n,I] */
    OP_HEAD_NORM,    /* qkv, q_norm [d], k_norm [d] → qkv with q and k heads RMS-normed */
    OP_ROPE,         /* qkv → qkv with q and k rotated by their positions */
    OP_KV_APPEND,    /* qkv → (writes k and v into the layer's cache; no output) */
    OP_ATTENTION,    /* qkv → attention over the cache [n, Hq*d] */
    OP_TAKE_LAST,    /* x[n,H] → x[n-1] as [1,H] */
    OP_KV_CREATE,    /* (create_kv_cache's body: allocates the cache) */
    OP_GELU_MUL,     /* gate_up[n,2I] → gelu_tanh(gate) * up [n,I] */
    OP_SOFTCAP,      /* x → softcap * tanh(x / softcap), same shape */
    OP_CONCAT,       /* a[n,A], b[n,B], ... → [n, A+B+...] (columns side by side) */
    OP_COUNT
};

enum dim_var { DIM_CONST = 0, DIM_ROWS = 1 };

struct dim {
    int64_t size;       /* the size, or the bound of the symbolic row count */
    enum dim_var var;
};

enum value_kind { VAL_INPUT, VAL_OUTPUT, VAL_TEMP, VAL_PARAM };

/* What a parameter is to the model: it decides how a scheme stores it
 * (embeddings stay row-major under KN schemes; some schemes leave the final
 * projection or embeddings unquantized; vectors are never quantized). */
enum param_role { ROLE_VECTOR, ROLE_LINEAR, ROLE_EMBEDDING, ROLE_FINAL_FC };

struct value {
    char *name;
    enum value_kind kind;
    enum dtype dtype;
    int ndim;
    struct dim dims[MOD_MAX_DIMS];
    /* parameters: how the logical tensor is stored */
    enum param_role role;
    char *scheme;               /* "none" or a quantization scheme name */
    int nparts;
    char *parts[MOD_MAX_PARTS]; /* tensor-cache names: weight | q_weight, q_scale[, ...] */
    /* memory plan (non-parameters): -1 until planned */
    int64_t offset;
    int64_t nbytes;
};

enum epilogue { EPI_NONE = 0, EPI_SILU_MUL = 1, EPI_GELU_MUL = 2 };

#define ROPE_MAX_FACTORS 128

enum rope_scaling_kind {
    ROPE_SCALING_NONE = 0,
    ROPE_SCALING_LLAMA3 = 1,    /* factor, low/high_freq_factor, original_max_position */
    ROPE_SCALING_LINEAR = 2,    /* inverse frequencies divided by factor */
    ROPE_SCALING_LONGROPE = 3,  /* per-frequency short/long factors, attention_factor */
};

struct rope_scaling {
    int kind;                   /* enum rope_scaling_kind */
    double factor, low_freq_factor, high_freq_factor;
    int64_t original_max_position;
    /* longrope: inv_freq[i] = 1 / (ext[i] * theta^(2i / rotary_dim)), ext
     * the long factors when the sequence's length after the step exceeds
     * original_max_position, else the short ones; cos and sin are
     * multiplied by attention_factor */
    int n_factors;              /* rotary_dim / 2 */
    float short_factor[ROPE_MAX_FACTORS];
    float long_factor[ROPE_MAX_FACTORS];
    double attention_factor;
};

/* Every attribute added after the first release defaults to 0 = "as
 * before" and is packed only when non-zero, so older plans keep their
 * bytes. */
struct op_attrs {
    double eps;                 /* norms */
    double weight_offset;       /* norms: y = x / rms(x) * (weight_offset + w) */
    double scale;               /* embed: rows multiplied by it; 0 = none */
    int layer;                  /* kv ops, attention */
    int n_heads, n_kv_heads, head_dim;
    double rope_theta;
    struct rope_scaling rope_scaling;
    int rotary_dim;             /* rope: dims rotated per head; 0 = head_dim */
    int sliding_window;         /* attention: rolling cache window; 0 = none */
    int attention_sink;         /* attention: tokens always attended */
    double attn_scale;          /* attention: softmax scale; 0 = 1 / sqrt(head_dim) */
    double softcap;             /* attention scores, or OP_SOFTCAP: c * tanh(s / c); 0 = none */
    int local_window;           /* attention: mask-only window (alternating layers); 0 = none */
    int epilogue;               /* matmul */
    /* kv_create */
    int n_layers;
    int64_t capacity;           /* tokens per sequence */
    int max_sequences;
};

struct op {
    enum op_kind kind;
    int nin, nout;
    int in[MOD_MAX_IN];         /* value indices; -1 = absent optional input */
    int out[MOD_MAX_OUT];
    struct op_attrs a;
};

struct function {
    char *name;                 /* embed, prefill, decode, create_kv_cache */
    struct value *values;
    int nvalues;
    struct op *ops;
    int nops;
    int64_t arena_bytes;        /* after memory planning */
};

/* A tensor of the weights the module binds (what a library's metadata
 * lists and the engine checks at load). */
struct param_ref {
    char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[MOD_MAX_DIMS];
};

struct memory_estimate {
    int64_t params_bytes;
    int64_t kv_bytes_per_token;
    int64_t kv_bytes_at_context;   /* per sequence, at the context window */
    int64_t arena_bytes;           /* the largest function's arena */
    int64_t total_bytes;           /* params + kv (one sequence at the context window) + arena */
};

struct model_dims {
    int64_t hidden_size, intermediate_size, vocab_size, active_vocab_size;
    int num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim;
    double rms_norm_eps, rope_theta;
    struct rope_scaling rope_scaling;
    int64_t context_window_size, prefill_chunk_size, sliding_window_size;
    int attention_sink_size, max_batch_size;
    bool tie_word_embeddings, qkv_bias, qk_norm;
    /* Gemma 2/3 and Phi-3 (0 = none; packed only when set): */
    int64_t local_window;          /* sliding layers' window (mask only, linear cache) */
    int local_window_pattern;      /* layer i is global when (i + 1) % pattern == 0 */
    double rope_local_theta;       /* rotary base of the sliding layers (Gemma 3) */
    double query_pre_attn_scalar;  /* softmax scale query_pre_attn_scalar^-0.5 */
    double attn_softcap;           /* attention logit soft-capping */
    double final_softcap;          /* final logit soft-capping */
    int rotary_dim;                /* rotated dims per head (partial_rotary_factor) */
};

struct module {
    int version;
    char *model_type;
    char *quantization;
    struct model_dims dims;
    struct param_ref *params;
    int nparams;
    struct function *fns;
    int nfns;
    char **passes;              /* names of the passes that ran, in order */
    int npasses;
    struct memory_estimate mem;
};

const char *op_name(enum op_kind k);
const char *param_role_name(enum param_role r);
/* "[2, 3]" */
void shape_format(char *out, size_t n, int ndim, const int64_t *shape);
int op_from_name(const char *name);   /* -1 if unknown */

/* Building */
struct function *module_add_function(struct module *m, const char *name);
int fn_add_value(struct function *f, const char *name, enum value_kind kind, enum dtype dt,
                 int ndim, const struct dim *dims);
int fn_add_op(struct function *f, enum op_kind kind, int nin, const int *in, int nout,
              const int *out, const struct op_attrs *a);
struct function *module_function(const struct module *m, const char *name);

/* Bytes of a value at its bounds (0 for parameters). */
int64_t value_bytes(const struct value *v);
/* Rows of a value for a given row count (the symbolic dimension bound). */
int64_t value_elems(const struct value *v, int64_t rows);

void module_free(struct module *m);

/* Serialisation: add the module's fields to a record being built (the
 * `module` record, or the "plan" map inside a library). */
struct rec_builder;
void module_pack_fields(struct rec_builder *b, const struct module *m);
/* Parse a record's map and validate it (`what` names the source in
 * messages, e.g. "module record"). 0 or -1 with last_error() set. */
int module_from_msgpack(const msgpack_object *map, struct module *m, const char *what);
/* Structural checks shared by the parser and the passes: every index in
 * range, every op's arity and shapes consistent, planned slots inside the
 * arena and non-overlapping while live. */
int module_validate(const struct module *m, const char *what);

#endif
