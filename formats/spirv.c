#include "formats/spirv.h"
#include "common/buf.h"
#include "common/err.h"

#include <spirv-tools/libspirv.h>
#include <stdlib.h>
#include <string.h>

/* SPIR-V opcodes, decorations and enumerants this file reads
 * (SPIR-V specification, section 3). */
enum {
    OP_NAME_ENTRY_POINT = 15, OP_EXECUTION_MODE = 16, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22,
    OP_TYPE_VECTOR = 23, OP_TYPE_IMAGE = 25, OP_TYPE_SAMPLED_IMAGE = 27, OP_TYPE_ARRAY = 28,
    OP_TYPE_RUNTIME_ARRAY = 29, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32, OP_CONSTANT = 43,
    OP_CONSTANT_COMPOSITE = 44, OP_SPEC_CONSTANT_TRUE = 48, OP_SPEC_CONSTANT_FALSE = 49,
    OP_SPEC_CONSTANT = 50, OP_SPEC_CONSTANT_COMPOSITE = 51, OP_VARIABLE = 59, OP_DECORATE = 71,
    OP_MEMBER_DECORATE = 72, OP_EXECUTION_MODE_ID = 331,
};
enum { DEC_SPEC_ID = 1, DEC_BLOCK = 2, DEC_BUFFER_BLOCK = 3, DEC_BUILTIN = 11, DEC_BINDING = 33,
       DEC_DESCRIPTOR_SET = 34, DEC_OFFSET = 35 };
enum { SC_UNIFORM_CONSTANT = 0, SC_UNIFORM = 2, SC_PUSH_CONSTANT = 9, SC_STORAGE_BUFFER = 12 };
enum { EXEC_GL_COMPUTE = 5, MODE_LOCAL_SIZE = 17, MODE_LOCAL_SIZE_ID = 38, BUILTIN_WORKGROUP_SIZE = 25,
       DIM_BUFFER = 5 };

const char *spirv_descriptor_name(enum spirv_descriptor d)
{
    switch (d) {
    case SPIRV_STORAGE_BUFFER: return "storage buffer";
    case SPIRV_UNIFORM_BUFFER: return "uniform buffer";
    case SPIRV_UNIFORM_TEXEL_BUFFER: return "uniform texel buffer";
    case SPIRV_STORAGE_TEXEL_BUFFER: return "storage texel buffer";
    }
    return "?";
}

int spirv_validate(const uint32_t *words, size_t nwords, const char *what)
{
    if (nwords < 5 || nwords > SPIRV_MAX_WORDS || words[0] != SPIRV_MAGIC)
        return fail("%s: not a SPIR-V module (bad size or magic number)", what);
    spv_context ctx = spvContextCreate(SPV_ENV_VULKAN_1_1);
    if (!ctx) return fail("%s: cannot create a SPIRV-Tools context", what);
    spv_validator_options opts = spvValidatorOptionsCreate();
    spv_const_binary_t bin = {words, nwords};
    spv_diagnostic diag = NULL;
    spv_result_t r = spvValidateWithOptions(ctx, opts, &bin, &diag);
    int rc = 0;
    if (r != SPV_SUCCESS) {
        const char *msg = diag && diag->error ? diag->error : "validation failed";
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) len--;
        /* the diagnostic may span lines (it quotes the instruction): keep one */
        const char *nl = memchr(msg, '\n', len);
        rc = fail("%s: invalid SPIR-V: %.*s", what, (int)(nl ? (size_t)(nl - msg) : len), msg);
    }
    spvDiagnosticDestroy(diag);
    spvValidatorOptionsDestroy(opts);
    spvContextDestroy(ctx);
    return rc;
}

/* ---- reflection ---- */

struct id_info {
    uint32_t at;                /* word offset of the defining instruction, 0 if none */
    int64_t binding, set, spec_id, builtin;
    bool block, buffer_block;
};

struct reader {
    const uint32_t *w;
    size_t n;
    uint32_t bound;
    struct id_info *ids;
    const char *what;
};

static uint32_t op_of(const struct reader *r, uint32_t at)
{
    return r->w[at] & 0xffff;
}

static uint32_t count_of(const struct reader *r, uint32_t at)
{
    return r->w[at] >> 16;
}

/* Operand i (after the opcode word) of the instruction at `at`, or 0 when
 * the instruction is shorter. */
static uint32_t arg(const struct reader *r, uint32_t at, uint32_t i)
{
    return i + 1 < count_of(r, at) ? r->w[at + 1 + i] : 0;
}

static const struct id_info *def(const struct reader *r, uint32_t id)
{
    return id < r->bound && r->ids[id].at ? &r->ids[id] : NULL;
}

/* Byte size of a scalar or vector type used in a push constant block. */
static int type_bytes(const struct reader *r, uint32_t type, uint32_t *bytes)
{
    const struct id_info *t = def(r, type);
    if (!t) return -1;
    uint32_t op = op_of(r, t->at);
    if (op == OP_TYPE_INT || op == OP_TYPE_FLOAT) {
        uint32_t width = arg(r, t->at, 1);
        if (width != 32 && width != 64 && width != 16) return -1;
        *bytes = width / 8;
        return 0;
    }
    if (op == OP_TYPE_VECTOR) {
        uint32_t e;
        uint32_t n = arg(r, t->at, 2);
        if (n < 2 || n > 4 || type_bytes(r, arg(r, t->at, 1), &e) != 0) return -1;
        *bytes = e * n;
        return 0;
    }
    return -1;
}

static int push_block_bytes(const struct reader *r, uint32_t strct, uint32_t *out)
{
    const struct id_info *s = def(r, strct);
    if (!s || op_of(r, s->at) != OP_TYPE_STRUCT) return fail("%s: the push constant block is not a struct", r->what);
    uint32_t nmem = count_of(r, s->at) - 2, end = 0;
    for (uint32_t m = 0; m < nmem; m++) {
        /* the member's Offset decoration */
        int64_t off = -1;
        for (size_t at = 5; at < r->n; at += count_of(r, (uint32_t)at))
            if (op_of(r, (uint32_t)at) == OP_MEMBER_DECORATE && arg(r, (uint32_t)at, 0) == strct &&
                arg(r, (uint32_t)at, 1) == m && arg(r, (uint32_t)at, 2) == DEC_OFFSET)
                off = arg(r, (uint32_t)at, 3);
        uint32_t bytes;
        if (off < 0 || type_bytes(r, arg(r, s->at, 1 + m), &bytes) != 0)
            return fail("%s: push constant member %u is not a scalar or vector with an offset", r->what, m);
        if (off + bytes > end) end = (uint32_t)off + bytes;
    }
    *out = end;
    return 0;
}

static int add_binding(struct reader *r, struct spirv_info *out, const struct id_info *var, enum spirv_descriptor type)
{
    if (var->binding < 0 || var->set < 0) return fail("%s: a resource lacks its Binding or DescriptorSet", r->what);
    if (var->set != 0) return fail("%s: descriptor set %lld is used (kernels bind set 0 only)", r->what, (long long)var->set);
    if (out->nbindings == SPIRV_MAX_BINDINGS) return fail("%s: more than %d bindings", r->what, SPIRV_MAX_BINDINGS);
    for (int i = 0; i < out->nbindings; i++)
        if (out->bindings[i].binding == (uint32_t)var->binding)
            return fail("%s: binding %lld is declared twice", r->what, (long long)var->binding);
    int i = out->nbindings++;
    while (i > 0 && out->bindings[i - 1].binding > (uint32_t)var->binding) {
        out->bindings[i] = out->bindings[i - 1];
        i--;
    }
    out->bindings[i] = (struct spirv_binding){(uint32_t)var->binding, type};
    return 0;
}

static int reflect_variable(struct reader *r, struct spirv_info *out, uint32_t at)
{
    uint32_t ptr = arg(r, at, 0), id = arg(r, at, 1), sc = arg(r, at, 2);
    if (sc != SC_UNIFORM_CONSTANT && sc != SC_UNIFORM && sc != SC_STORAGE_BUFFER && sc != SC_PUSH_CONSTANT) return 0;
    const struct id_info *p = def(r, ptr), *var = def(r, id);
    if (!p || !var || op_of(r, p->at) != OP_TYPE_POINTER) return fail("%s: variable %u has no pointer type", r->what, id);
    uint32_t pointee = arg(r, p->at, 2);
    const struct id_info *t = def(r, pointee);
    if (!t) return fail("%s: variable %u points to an undefined type", r->what, id);
    uint32_t top = op_of(r, t->at);
    if (top == OP_TYPE_ARRAY || top == OP_TYPE_RUNTIME_ARRAY)
        return fail("%s: descriptor arrays are not supported (variable %u)", r->what, id);
    if (sc == SC_PUSH_CONSTANT) {
        if (out->push_bytes) return fail("%s: two push constant blocks", r->what);
        return push_block_bytes(r, pointee, &out->push_bytes);
    }
    if (sc == SC_UNIFORM_CONSTANT) {
        uint32_t image = top == OP_TYPE_SAMPLED_IMAGE ? arg(r, t->at, 1) : top == OP_TYPE_IMAGE ? pointee : 0;
        const struct id_info *img = def(r, image);
        if (!img || op_of(r, img->at) != OP_TYPE_IMAGE || arg(r, img->at, 2) != DIM_BUFFER)
            return fail("%s: variable %u is an image or sampler that is not a texel buffer", r->what, id);
        uint32_t sampled = arg(r, img->at, 6);
        if (top == OP_TYPE_SAMPLED_IMAGE && sampled == 1) return add_binding(r, out, var, SPIRV_UNIFORM_TEXEL_BUFFER);
        if (top == OP_TYPE_IMAGE && sampled == 2) return add_binding(r, out, var, SPIRV_STORAGE_TEXEL_BUFFER);
        return fail("%s: variable %u is a texel buffer of an unsupported kind", r->what, id);
    }
    if (top != OP_TYPE_STRUCT) return fail("%s: buffer variable %u is not a block", r->what, id);
    if (sc == SC_STORAGE_BUFFER || t->buffer_block) return add_binding(r, out, var, SPIRV_STORAGE_BUFFER);
    if (t->block) return add_binding(r, out, var, SPIRV_UNIFORM_BUFFER);
    return fail("%s: uniform variable %u is neither Block nor BufferBlock", r->what, id);
}

/* A constituent of the workgroup size: a constant, or a specialization
 * constant (its SpecId noted). */
static int local_dim(const struct reader *r, uint32_t id, uint32_t *value, int *spec)
{
    const struct id_info *c = def(r, id);
    if (!c) return -1;
    uint32_t op = op_of(r, c->at);
    if (op != OP_CONSTANT && op != OP_SPEC_CONSTANT) return -1;
    *value = arg(r, c->at, 2);
    *spec = op == OP_SPEC_CONSTANT && c->spec_id >= 0 ? (int)c->spec_id : -1;
    return 0;
}

int spirv_reflect(const uint32_t *words, size_t nwords, struct spirv_info *out, const char *what)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 3; i++) out->local_size_spec[i] = -1;
    if (nwords < 5 || nwords > SPIRV_MAX_WORDS || words[0] != SPIRV_MAGIC)
        return fail("%s: not a SPIR-V module (bad size or magic number)", what);
    struct reader r = {words, nwords, words[3], NULL, what};
    if (r.bound == 0 || r.bound > nwords * 4) return fail("%s: id bound %u is implausible", what, r.bound);
    r.ids = xcalloc(r.bound, sizeof *r.ids);
    for (uint32_t i = 0; i < r.bound; i++)
        r.ids[i].binding = r.ids[i].set = r.ids[i].spec_id = r.ids[i].builtin = -1;
    int rc = 0, entries = 0;
    uint32_t entry = 0, mode_at = 0, mode_id_at = 0;
    /* pass 1: definitions, decorations, entry point */
    for (size_t at = 5; at < nwords && rc == 0;) {
        uint32_t n = words[at] >> 16, op = words[at] & 0xffff;
        if (n == 0 || n > nwords - at) {
            rc = fail("%s: malformed instruction at word %zu", what, at);
            break;
        }
        uint32_t a = (uint32_t)at;
        switch (op) {
        case OP_NAME_ENTRY_POINT:
            if (arg(&r, a, 0) == EXEC_GL_COMPUTE && n >= 5 && !memcmp(&words[at + 3], "main\0\0\0\0", 8)) {
                entries++;
                entry = arg(&r, a, 1);
            } else {
                rc = fail("%s: only one GLCompute entry point named main is allowed", what);
            }
            break;
        case OP_EXECUTION_MODE:
            if (arg(&r, a, 1) == MODE_LOCAL_SIZE) mode_at = a;
            break;
        case OP_EXECUTION_MODE_ID:
            if (arg(&r, a, 1) == MODE_LOCAL_SIZE_ID) mode_id_at = a;
            break;
        case OP_DECORATE: {
            uint32_t target = arg(&r, a, 0), dec = arg(&r, a, 1), lit = arg(&r, a, 2);
            if (target >= r.bound) {
                rc = fail("%s: decoration of id %u beyond the bound", what, target);
                break;
            }
            struct id_info *d = &r.ids[target];
            if (dec == DEC_BINDING) d->binding = lit;
            else if (dec == DEC_DESCRIPTOR_SET) d->set = lit;
            else if (dec == DEC_SPEC_ID) d->spec_id = lit;
            else if (dec == DEC_BLOCK) d->block = true;
            else if (dec == DEC_BUFFER_BLOCK) d->buffer_block = true;
            else if (dec == DEC_BUILTIN) d->builtin = lit;
            break;
        }
        case OP_TYPE_INT: case OP_TYPE_FLOAT: case OP_TYPE_VECTOR: case OP_TYPE_IMAGE: case OP_TYPE_SAMPLED_IMAGE:
        case OP_TYPE_ARRAY: case OP_TYPE_RUNTIME_ARRAY: case OP_TYPE_STRUCT: case OP_TYPE_POINTER: {
            uint32_t id = arg(&r, a, 0);
            if (id == 0 || id >= r.bound) rc = fail("%s: type id %u out of range", what, id);
            else r.ids[id].at = a;
            break;
        }
        case OP_CONSTANT: case OP_CONSTANT_COMPOSITE: case OP_SPEC_CONSTANT_TRUE: case OP_SPEC_CONSTANT_FALSE:
        case OP_SPEC_CONSTANT: case OP_SPEC_CONSTANT_COMPOSITE: case OP_VARIABLE: {
            uint32_t id = arg(&r, a, 1);
            if (id == 0 || id >= r.bound) rc = fail("%s: result id %u out of range", what, id);
            else r.ids[id].at = a;
            break;
        }
        default: break;
        }
        at += n;
    }
    if (rc == 0 && entries != 1) rc = fail("%s: no GLCompute entry point named main", what);
    (void)entry;
    /* pass 2: resources, specialization constants, workgroup size */
    bool have_size = false;
    for (uint32_t id = 1; rc == 0 && id < r.bound; id++) {
        const struct id_info *d = &r.ids[id];
        if (!d->at) continue;
        uint32_t op = op_of(&r, d->at);
        if (op == OP_VARIABLE) rc = reflect_variable(&r, out, d->at);
        if ((op == OP_SPEC_CONSTANT || op == OP_SPEC_CONSTANT_TRUE || op == OP_SPEC_CONSTANT_FALSE) && d->spec_id >= 0) {
            if (out->nspec == SPIRV_MAX_SPEC) {
                rc = fail("%s: more than %d specialization constants", what, SPIRV_MAX_SPEC);
                break;
            }
            uint32_t bits = op == OP_SPEC_CONSTANT ? arg(&r, d->at, 2) : op == OP_SPEC_CONSTANT_TRUE;
            int i = out->nspec++;
            while (i > 0 && out->spec[i - 1].id > (uint32_t)d->spec_id) {
                out->spec[i] = out->spec[i - 1];
                i--;
            }
            out->spec[i] = (struct spirv_spec){(uint32_t)d->spec_id, bits};
        }
        if ((op == OP_CONSTANT_COMPOSITE || op == OP_SPEC_CONSTANT_COMPOSITE) && d->builtin == BUILTIN_WORKGROUP_SIZE) {
            if (count_of(&r, d->at) != 6) {
                rc = fail("%s: WorkgroupSize is not a 3-component constant", what);
                break;
            }
            for (int k = 0; k < 3 && rc == 0; k++)
                if (local_dim(&r, arg(&r, d->at, 2 + (uint32_t)k), &out->local_size[k], &out->local_size_spec[k]) != 0)
                    rc = fail("%s: WorkgroupSize component %d is not a constant", what, k);
            have_size = true;
        }
    }
    if (rc == 0 && !have_size) {
        if (mode_at && count_of(&r, mode_at) >= 6) {
            for (int k = 0; k < 3; k++) out->local_size[k] = arg(&r, mode_at, 2 + (uint32_t)k);
        } else if (mode_id_at && count_of(&r, mode_id_at) >= 6) {
            for (int k = 0; k < 3 && rc == 0; k++)
                if (local_dim(&r, arg(&r, mode_id_at, 2 + (uint32_t)k), &out->local_size[k], &out->local_size_spec[k]) != 0)
                    rc = fail("%s: LocalSizeId operand %d is not a constant", what, k);
        } else {
            rc = fail("%s: no workgroup size", what);
        }
    }
    free(r.ids);
    return rc;
}
