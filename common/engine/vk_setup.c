/* What the Vulkan executor builds once: pipelines, weights in device
 * memory, arenas, KV cache, step and transfer buffers, texel views, and a
 * descriptor set for every dispatch. */
#include "common/buf.h"
#include "common/engine/cpu_kernels.h"
#include "common/engine/kv_cache.h"
#include "common/engine/vk_internal.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WEIGHT_BLOCK_MAX (1ull << 30)   /* device memory for weights comes in blocks up to this */
#define STAGING_BYTES (64ull << 20)

static VkFormat format_of(enum lp_view v)
{
    switch (v) {
    case LP_F32: return VK_FORMAT_R32_SFLOAT;
    case LP_F32X4: return VK_FORMAT_R32G32B32A32_SFLOAT;
    case LP_U16: return VK_FORMAT_R16_UINT;
    case LP_U16X4: return VK_FORMAT_R16G16B16A16_UINT;
    case LP_U32: return VK_FORMAT_R32_UINT;
    case LP_U32X4: return VK_FORMAT_R32G32B32A32_UINT;
    default: return VK_FORMAT_UNDEFINED;
    }
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* ---- pipelines ---- */

static int create_pipelines(struct vk_exec *x)
{
    const struct launch_plan *lp = x->lp;
    VkDevice dev = x->dev.dev;
    x->dsl = xcalloc((size_t)lp->nkernels + 1, sizeof *x->dsl);
    x->layout = xcalloc((size_t)lp->nkernels + 1, sizeof *x->layout);
    x->pipe = xcalloc((size_t)lp->nkernels + 1, sizeof *x->pipe);
    for (int k = 0; k < lp->nkernels; k++) {
        const struct lp_kernel *kn = &lp->kernels[k];
        const struct spirv_info *in = &kn->info;
        if (in->push_bytes > x->dev.props.limits.maxPushConstantsSize)
            return fail("kernel %s takes %u bytes of push constants, the device allows %u", kn->name, in->push_bytes,
                        x->dev.props.limits.maxPushConstantsSize);
        /* the workgroup size, with the constants the plan gives */
        uint64_t invocations = 1;
        for (int d = 0; d < 3; d++) {
            uint32_t size = in->local_size[d];
            for (int i = 0; i < kn->nspec; i++)
                if (in->local_size_spec[d] >= 0 && kn->spec_id[i] == (uint32_t)in->local_size_spec[d]) size = kn->spec_bits[i];
            if (size < 1 || size > x->dev.props.limits.maxComputeWorkGroupSize[d])
                return fail("kernel %s: workgroup size %u in dimension %d, the device allows 1 to %u", kn->name, size, d,
                            x->dev.props.limits.maxComputeWorkGroupSize[d]);
            invocations *= size;
        }
        if (invocations > x->dev.props.limits.maxComputeWorkGroupInvocations)
            return fail("kernel %s: %llu invocations a workgroup, the device allows %u", kn->name,
                        (unsigned long long)invocations, x->dev.props.limits.maxComputeWorkGroupInvocations);
        VkDescriptorSetLayoutBinding b[SPIRV_MAX_BINDINGS];
        for (int i = 0; i < in->nbindings; i++)
            b[i] = (VkDescriptorSetLayoutBinding){
                .binding = in->bindings[i].binding,
                .descriptorType = in->bindings[i].type == SPIRV_STORAGE_BUFFER ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                                                : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                .descriptorCount = 1,
                .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
        VkDescriptorSetLayoutCreateInfo dli = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                               .bindingCount = (uint32_t)in->nbindings,
                                               .pBindings = b};
        if (vk_check("vkCreateDescriptorSetLayout", vkCreateDescriptorSetLayout(dev, &dli, NULL, &x->dsl[k])))
            return fail_prefix("kernel %s", kn->name);
        VkPushConstantRange pcr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, in->push_bytes};
        VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                          .setLayoutCount = 1,
                                          .pSetLayouts = &x->dsl[k],
                                          .pushConstantRangeCount = in->push_bytes ? 1 : 0,
                                          .pPushConstantRanges = &pcr};
        if (vk_check("vkCreatePipelineLayout", vkCreatePipelineLayout(dev, &pli, NULL, &x->layout[k])))
            return fail_prefix("kernel %s", kn->name);
        VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                        .codeSize = kn->nwords * 4,
                                        .pCode = kn->words};
        VkShaderModule sm;
        if (vk_check("vkCreateShaderModule", vkCreateShaderModule(dev, &smi, NULL, &sm)))
            return fail_prefix("kernel %s", kn->name);
        VkSpecializationMapEntry me[LP_MAX_SPEC];
        for (int i = 0; i < kn->nspec; i++) me[i] = (VkSpecializationMapEntry){kn->spec_id[i], (uint32_t)i * 4, 4};
        VkSpecializationInfo si = {(uint32_t)kn->nspec, me, (size_t)kn->nspec * 4, kn->spec_bits};
        VkComputePipelineCreateInfo cpi = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = sm,
                      .pName = "main",
                      .pSpecializationInfo = kn->nspec ? &si : NULL},
            .layout = x->layout[k]};
        VkResult r = vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &cpi, NULL, &x->pipe[k]);
        vkDestroyShaderModule(dev, sm, NULL);
        if (vk_check("vkCreateComputePipelines", r)) return fail_prefix("kernel %s", kn->name);
    }
    return 0;
}

/* ---- weights ---- */

static struct vk_tensor *find_tensor(struct vk_exec *x, const char *name)
{
    for (int i = 0; i < x->ntensors; i++)
        if (!strcmp(x->tensors[i].name, name)) return &x->tensors[i];
    return NULL;
}

/* A tensor cache keeps float32 tensors as bfloat16 ("f32-to-bf16"); a
 * tensor source may hand them over as stored, two bytes an element. The
 * kernels read float32 weights as float32: such tensors are widened on
 * their way to the device. */
static bool stored_as_bf16(const struct tensor_view *tv)
{
    if (tv->dtype != DT_F32) return false;
    uint64_t n = 1;
    for (int d = 0; d < tv->ndim; d++) n *= (uint64_t)tv->shape[d];
    return n > 0 && tv->nbytes == 2 * n;
}

static void widen_bf16(unsigned char *dst, const unsigned char *src, size_t halves)
{
    for (size_t i = 0; i < halves; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t f = (uint32_t)h << 16;
        memcpy(dst + 4 * i, &f, 4);
    }
}

/* Every parameter bound as the CPU executor binds it (shapes and dtypes
 * checked against the scheme), then the tensors the launches read. */
static int collect_tensors(struct vk_exec *x, const struct tensor_source *src)
{
    const struct module *m = x->m;
    int total = 0;
    for (int fi = 0; fi < m->nfns; fi++)
        for (int v = 0; v < m->fns[fi].nvalues; v++) total += m->fns[fi].values[v].kind == VAL_PARAM;
    x->bound = xcalloc((size_t)total + 1, sizeof *x->bound);
    for (int fi = 0; fi < m->nfns; fi++)
        for (int v = 0; v < m->fns[fi].nvalues; v++) {
            const struct value *val = &m->fns[fi].values[v];
            if (val->kind != VAL_PARAM) continue;
            if (weight_bind(&x->bound[x->nbound], val, m->quantization, src)) return -1;
            x->nbound++;
        }
    x->tensors = xcalloc((size_t)x->nbound * MOD_MAX_PARTS + 1, sizeof *x->tensors);
    for (int b = 0; b < x->nbound; b++)
        for (int p = 0; p < x->bound[b].nparts; p++) {
            const struct tensor_view *tv = x->bound[b].parts[p];
            if (find_tensor(x, tv->name)) continue;
            x->tensors[x->ntensors++] = (struct vk_tensor){tv->name, tv, -1, 0, tv->nbytes, false};
            struct vk_tensor *t = &x->tensors[x->ntensors - 1];
            t->widen = stored_as_bf16(tv);
            if (t->widen) t->bytes = 2 * (uint64_t)tv->nbytes;
        }
    return 0;
}

static int upload(struct vk_exec *x, struct vk_buffer *staging, const struct vk_tensor *t)
{
    struct vk_buffer *dst = &x->blocks[t->block];
    const unsigned char *data = t->view->data;
    size_t n = (size_t)t->bytes;
    if (dst->map) {
        if (t->widen) widen_bf16((unsigned char *)dst->map + t->offset, data, n / 4);
        else memcpy((unsigned char *)dst->map + t->offset, data, n);
        return 0;
    }
    for (size_t at = 0; at < n; at += staging->size) {
        size_t len = n - at < staging->size ? n - at : staging->size;
        if (t->widen) widen_bf16(staging->map, data + at / 2, len / 4);
        else memcpy(staging->map, data + at, len);
        if (vk_buffer_flush(&x->dev, staging)) return -1;
        VkCommandBuffer cb;
        if (vk_begin(&x->dev, &cb)) return -1;
        VkBufferCopy region = {0, t->offset + at, len};
        vkCmdCopyBuffer(cb, staging->buf, dst->buf, 1, &region);
        if (vk_submit_wait(&x->dev, cb)) return -1;
    }
    return 0;
}

/* Tensors packed into blocks of device memory at aligned offsets, then
 * copied in: straight into mapped memory, or through a staging buffer. */
static int place_weights(struct vk_exec *x)
{
    uint64_t block_max = x->dev.max_allocation < WEIGHT_BLOCK_MAX ? x->dev.max_allocation : WEIGHT_BLOCK_MAX;
    uint64_t *sizes = xcalloc((size_t)x->ntensors + 1, sizeof *sizes);
    int nblocks = 0;
    for (int i = 0; i < x->ntensors; i++) {
        struct vk_tensor *t = &x->tensors[i];
        uint64_t n = round_up(t->bytes ? t->bytes : 16, 16);
        if (nblocks == 0 || round_up(sizes[nblocks - 1], x->align) + n > block_max) sizes[nblocks++] = 0;
        t->block = nblocks - 1;
        t->offset = round_up(sizes[nblocks - 1], x->align);
        sizes[nblocks - 1] = t->offset + n;
    }
    x->blocks = xcalloc((size_t)nblocks + 1, sizeof *x->blocks);
    int rc = 0;
    bool staged = false;
    for (int b = 0; b < nblocks && rc == 0; b++, x->nblocks++) {
        char what[64];
        snprintf(what, sizeof what, "weights (block %d of %d)", b + 1, nblocks);
        rc = vk_buffer_create(&x->dev, sizes[b], false, &x->blocks[b], what);
        staged = staged || (rc == 0 && !x->blocks[b].map);
    }
    free(sizes);
    struct vk_buffer staging = {0};
    if (rc == 0 && staged) rc = vk_buffer_create(&x->dev, STAGING_BYTES, true, &staging, "staging buffer");
    for (int i = 0; rc == 0 && i < x->ntensors; i++) rc = upload(x, &staging, &x->tensors[i]);
    for (int b = 0; rc == 0 && b < x->nblocks; b++) rc = vk_buffer_flush(&x->dev, &x->blocks[b]);
    if (staging.buf) vk_buffer_destroy(&x->dev, &staging);
    return rc;
}

/* ---- views ---- */

static VkBufferView get_view(struct vk_exec *x, VkBuffer buf, VkDeviceSize offset, VkDeviceSize range, enum lp_view v)
{
    VkFormat fmt = format_of(v);
    for (size_t i = 0; i < x->nviews; i++) {
        const struct vk_view *w = &x->views[i];
        if (w->buf == buf && w->offset == offset && w->range == range && w->format == fmt) return w->view;
    }
    VkBufferViewCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                 .buffer = buf,
                                 .format = fmt,
                                 .offset = offset,
                                 .range = range};
    VkBufferView view;
    if (vk_check("vkCreateBufferView", vkCreateBufferView(x->dev.dev, &ci, NULL, &view))) return VK_NULL_HANDLE;
    x->views = xgrow(x->views, &x->cap_views, x->nviews + 1, sizeof *x->views);
    x->views[x->nviews++] = (struct vk_view){buf, offset, range, fmt, view};
    return view;
}

/* Where a binding points: buffer, aligned offset, range, and the element
 * offset (base) of what it sees inside the range. */
struct target {
    VkBuffer buf;
    VkDeviceSize offset, range;
    int64_t base;
};

static uint32_t elem_bytes(enum lp_view v)
{
    return lp_view_bytes(v);
}

static bool view_fits_dtype(enum lp_view v, enum dtype t)
{
    switch (v) {
    case LP_F32: case LP_F32X4: return t == DT_F32;
    case LP_U32: case LP_U32X4: return t == DT_F32 || t == DT_U32 || t == DT_F8_E4M3 || t == DT_F8_E5M2;
    case LP_U16: case LP_U16X4: return t == DT_F16 || t == DT_BF16;
    default: return false;
    }
}

static int arena_target(struct vk_exec *x, struct vk_buffer *arena, const struct value *v, enum lp_view view,
                        struct target *t)
{
    uint64_t eb = elem_bytes(view);
    uint64_t aligned = (uint64_t)v->offset / x->align * x->align;
    if (((uint64_t)v->offset - aligned) % eb)
        return fail("value %s at offset %lld cannot be seen through a %s view", v->name, (long long)v->offset,
                    lp_view_name(view));
    uint64_t end = round_up((uint64_t)(v->offset + v->nbytes), eb);
    if (end > arena->size) return fail("value %s lies outside the arena", v->name);
    t->buf = arena->buf;
    t->offset = aligned;
    t->range = end - aligned;
    t->base = (int64_t)(((uint64_t)v->offset - aligned) / eb);
    uint64_t limit = vk_binding_limit(&x->dev, view == LP_STORAGE ? 0 : (uint32_t)eb);
    if (t->range > limit)
        return fail("value %s (%lld bytes) is larger than one %s binding may be on this device (%llu bytes)", v->name,
                    (long long)v->nbytes, view == LP_STORAGE ? "storage" : "texel", (unsigned long long)limit);
    return 0;
}

/* The binding of tensor t through `view`: rows [row0, row0 + nrows) of its
 * parameter's `total` logical rows (all of it when nrows is 0). The view
 * starts at an aligned offset, `base` elements before the first row. */
static int tensor_target(struct vk_exec *x, const struct vk_tensor *t, enum lp_view view, int64_t total, int64_t row0,
                         int64_t nrows, struct target *out)
{
    uint64_t eb = elem_bytes(view), n = t->bytes;
    if (!view_fits_dtype(view, t->view->dtype) || n % eb)
        return fail("tensor %s (%s, %llu bytes) cannot be read through a %s view", t->name, dtype_name(t->view->dtype),
                    (unsigned long long)n, lp_view_name(view));
    uint64_t off = 0, len = n;
    if (nrows) {
        if (total < 1 || n % (uint64_t)total || (n / (uint64_t)total) % eb)
            return fail("tensor %s cannot be bound by rows of %lld", t->name, (long long)total);
        uint64_t row = n / (uint64_t)total;
        off = row * (uint64_t)row0;
        len = row * (uint64_t)nrows;
    }
    uint64_t start = t->offset + off, aligned = start / x->align * x->align;
    out->buf = x->blocks[t->block].buf;
    out->offset = aligned;
    out->range = start - aligned + (len ? len : eb);
    out->base = (int64_t)((start - aligned) / eb);
    uint64_t limit = vk_weight_binding_limit(&x->dev, (uint32_t)eb);
    if (out->range > limit)
        return fail("tensor %s (%llu bytes) is larger than one texel binding may be here (%llu bytes) and its launch "
                    "cannot be split into row slices",
                    t->name, (unsigned long long)n, (unsigned long long)limit);
    return 0;
}

/* The parameter (value of fn) a tensor belongs to, or NULL. */
static const struct value *param_of(const struct vk_fn *fn, const char *tensor)
{
    for (int v = 0; v < fn->f->nvalues; v++) {
        const struct value *val = &fn->f->values[v];
        if (val->kind != VAL_PARAM) continue;
        for (int i = 0; i < val->nparts; i++)
            if (!strcmp(val->parts[i], tensor)) return val;
    }
    return NULL;
}

/* ---- buffers ---- */

/* What the KV cache rounds keys and values to: the model's dtype, as the
 * CPU executor's cache and MLC's keep them, so that the two executors agree
 * to float32 rounding (the tests, bisection). Kernels take it as kv_dtype. */
static enum dtype kv_cache_rounding(const struct module *m)
{
    return kv_cache_dtype_for(m->quantization);
}

/* kv_dtype as the kernels read it (shaders/common.glsl) */
static int64_t kv_dtype_code(enum dtype t)
{
    return t == DT_F16 ? 1 : t == DT_BF16 ? 2 : 0;
}

static const struct op *kv_create(const struct module *m)
{
    const struct function *f = module_function(m, "create_kv_cache");
    return f && f->nops == 1 && f->ops[0].kind == OP_KV_CREATE ? &f->ops[0] : NULL;
}

static int init_fn(struct vk_exec *x, struct vk_fn *fn, const char *name, struct vk_buffer *arena)
{
    fn->f = module_function(x->m, name);
    fn->lf = launch_plan_function(x->lp, name);
    fn->arena = arena;
    fn->input = fn->output = fn->perturb = -1;
    if (!fn->f || !fn->lf) return fail("the library has no %s function%s", name, fn->f ? " in its Vulkan plan" : "");
    for (int v = 0; v < fn->f->nvalues; v++) {
        if (fn->f->values[v].kind == VAL_INPUT) fn->input = v, fn->bound = fn->f->values[v].dims[0].size;
        if (fn->f->values[v].kind == VAL_OUTPUT) fn->output = v;
    }
    if (fn->input < 0 || fn->output < 0) return fail("function %s needs one input and one output", name);
    const char *perturb = getenv("MLC_VK_PERTURB");
    for (int v = 0; perturb && v < fn->f->nvalues; v++)
        if (!strcmp(fn->f->values[v].name, perturb) && fn->f->values[v].kind != VAL_PARAM) fn->perturb = v;
    return 0;
}

/* The inverse frequencies of each rotary table, as the CPU executor
 * computes them (for LongRoPE both sets of factors). */
static int make_rope_tables(struct vk_exec *x)
{
    const struct op_attrs *first[LP_MAX_ROPE_TABLES];
    int n = lp_rope_tables(x->m, first);
    if (n < 0) return -1;
    x->seq_end = xcalloc((size_t)x->max_seq, sizeof *x->seq_end);
    for (int t = 0; t < n; t++, x->nrope++) {
        const struct op_attrs *a = first[t];
        struct vk_rope_table *rt = &x->rope[t];
        int rd = a->rotary_dim ? a->rotary_dim : a->head_dim;
        if (a->head_dim != x->head_dim || rd < 2 || rd > a->head_dim || rd % 2)
            return fail("rope: head_dim %d, rotary_dim %d do not fit the model's head_dim %d", a->head_dim, a->rotary_dim,
                        x->head_dim);
        rt->a = a;
        rt->pairs = rd / 2;
        rt->cs_scale = 1;
        rt->inv_freq = xcalloc((size_t)rt->pairs, sizeof *rt->inv_freq);
        const struct rope_scaling *rs = &a->rope_scaling;
        if (rs->kind == ROPE_SCALING_LONGROPE) {
            if (rs->n_factors != rt->pairs)
                return fail("rope: %d LongRoPE factors for %d rotated pairs", rs->n_factors, rt->pairs);
            rt->inv_freq_long = xcalloc((size_t)rt->pairs, sizeof *rt->inv_freq_long);
            rt->original = rs->original_max_position;
            rt->cs_scale = (float)rs->attention_factor;
            k_rope_inv_freq(rd, a->rope_theta, rs, false, rt->inv_freq);
            k_rope_inv_freq(rd, a->rope_theta, rs, true, rt->inv_freq_long);
        } else {
            k_rope_inv_freq(rd, a->rope_theta, rs, false, rt->inv_freq);
        }
    }
    return 0;
}

static int create_buffers(struct vk_exec *x)
{
    const struct module *m = x->m;
    const struct op *kv = kv_create(m);
    if (!kv) return fail("create_kv_cache must hold exactly one kv_create op");
    const struct op_attrs *a = &kv->a;
    int64_t kvd = (int64_t)a->n_kv_heads * a->head_dim;
    x->capacity = a->capacity;
    x->window = a->sliding_window;
    x->sink = a->sliding_window ? a->attention_sink : 0;
    x->head_dim = m->dims.head_dim;
    if (a->capacity < 1 || kvd < 1 || a->n_layers != m->dims.num_hidden_layers)
        return fail("create_kv_cache: the cache's sizes do not match the model");
    if (x->window && x->capacity <= x->sink)
        return fail("KV cache: capacity %lld leaves no room beyond %d sink tokens", (long long)x->capacity, x->sink);
    uint64_t layer = (uint64_t)x->max_seq * 2 * (uint64_t)x->capacity * (uint64_t)kvd * 4;
    x->kv_layer_bytes = round_up(layer, x->align);
    uint64_t storage_limit = vk_binding_limit(&x->dev, 0);
    if (layer > storage_limit)
        return fail("KV cache: one layer for %d sequences of %lld tokens takes %llu bytes, more than a storage binding "
                    "may cover here (%llu): use fewer sequences (--mode interactive) or a smaller context window",
                    x->max_seq, (long long)x->capacity, (unsigned long long)layer, (unsigned long long)storage_limit);
    if (vk_buffer_create(&x->dev, x->kv_layer_bytes * (uint64_t)a->n_layers, false, &x->kv, "KV cache")) return -1;

    int64_t embed_bytes = 0, main_bytes = 0, step_rows = 0, logits = 0, ids = 0;
    for (int i = 0; i < m->nfns; i++) {
        const struct function *f = &m->fns[i];
        if (!strcmp(f->name, "embed")) embed_bytes = f->arena_bytes;
        else if (!strcmp(f->name, "prefill") || !strcmp(f->name, "decode"))
            main_bytes = f->arena_bytes > main_bytes ? f->arena_bytes : main_bytes;
    }
    if (vk_buffer_create(&x->dev, round_up((uint64_t)embed_bytes + 64, x->align) + x->align, false, &x->arena_embed,
                         "activations of embed") ||
        vk_buffer_create(&x->dev, round_up((uint64_t)main_bytes + 64, x->align) + x->align, false, &x->arena_main,
                         "activations of prefill and decode"))
        return -1;
    if (init_fn(x, &x->embed, "embed", &x->arena_embed) || init_fn(x, &x->prefill, "prefill", &x->arena_main) ||
        init_fn(x, &x->decode, "decode", &x->arena_main))
        return -1;
    struct vk_fn *fns[3] = {&x->embed, &x->prefill, &x->decode};
    for (int i = 0; i < 3; i++) {
        step_rows = fns[i]->bound > step_rows ? fns[i]->bound : step_rows;
        const struct value *o = &fns[i]->f->values[fns[i]->output];
        if (i > 0 && o->nbytes > logits) logits = o->nbytes;
    }
    ids = step_rows * 4;
    if (make_rope_tables(x)) return -1;
    int64_t step_words = LP_STEP_WORDS(step_rows, x->head_dim, x->nrope > 0 ? x->nrope : 1);
    if (vk_buffer_create(&x->dev, (uint64_t)step_words * 4 + 64, true, &x->step, "step data")) return -1;
    x->io_out = round_up((uint64_t)ids, 256);
    if (vk_buffer_create(&x->dev, x->io_out + (uint64_t)logits + 64, true, &x->io, "input and output transfers") ||
        vk_buffer_create(&x->dev, 256, false, &x->zero, "unused bindings"))
        return -1;
    VkCommandBuffer cb;
    if (vk_begin(&x->dev, &cb)) return -1;
    vkCmdFillBuffer(cb, x->zero.buf, 0, VK_WHOLE_SIZE, 0);
    return vk_submit_wait(&x->dev, cb);
}

/* ---- descriptor sets ---- */

/* Whether a tensor of parameter p holds a row for each of p's rows
 * (weights, group scales), or one value for the whole of it (an FP8
 * tensor's scales, float32 [1]: bound whole, in every slice). */
static bool by_rows(const struct vk_tensor *t, const struct value *p)
{
    return !(t->view->ndim == 1 && t->view->shape[0] == 1 && p->dims[0].size != 1);
}

/* Row slices of a launch's weight: one when it fits a binding. *nrows: the
 * rows a slice is taken from (the bindings' windows, which must agree). */
static int slices_of(struct vk_exec *x, const struct vk_fn *fn, const struct lp_launch *l, int64_t *chunk, int64_t *nrows)
{
    const struct value *p = &fn->f->values[l->slice_value];
    *nrows = -1;
    *chunk = INT64_MAX;
    for (int b = 0; b < l->nbind; b++) {
        const struct lp_binding *bd = &l->bind[b];
        if (bd->source != LP_TENSOR || param_of(fn, bd->tensor) != p) continue;
        const struct vk_tensor *t = find_tensor(x, bd->tensor);
        if (!t || !by_rows(t, p)) continue;
        int64_t window = bd->nrows ? bd->nrows : p->dims[0].size;
        if (*nrows >= 0 && window != *nrows)
            return fail("%s: its bindings see different numbers of rows and cannot be sliced together", p->name);
        *nrows = window;
        uint64_t n = t->bytes, eb = elem_bytes(bd->view);
        if (n % (uint64_t)p->dims[0].size) return fail("tensor %s cannot be split into rows", t->name);
        uint64_t row = n / (uint64_t)p->dims[0].size, limit = vk_weight_binding_limit(&x->dev, (uint32_t)eb);
        uint64_t fit = limit > x->align ? (limit - x->align) / row : 0;
        if (fit < 1) return fail("tensor %s: one row is larger than a binding may be", t->name);
        if ((int64_t)fit < *chunk) *chunk = (int64_t)fit;
    }
    if (*nrows < 0) return fail("%s: the launch binds none of its tensors", p->name);
    if (*chunk > *nrows) *chunk = *nrows;
    return 0;
}

static int describe_dispatch(struct vk_exec *x, struct vk_fn *fn, int li, int64_t r0, int64_t rn,
                             struct vk_dispatch *d, VkWriteDescriptorSet *writes, VkDescriptorBufferInfo *infos,
                             VkBufferView *tviews)
{
    const struct lp_launch *l = &fn->lf->launches[li];
    const struct value *sp = l->slice_value >= 0 ? &fn->f->values[l->slice_value] : NULL;
    d->launch = li;
    d->vars[LPV_SLICE_START] = r0;
    d->vars[LPV_SLICE_ROWS] = rn;
    d->vars[LPV_KV_DTYPE] = kv_dtype_code(kv_cache_rounding(x->m));
    for (int b = 0; b < l->nbind; b++) {
        const struct lp_binding *bd = &l->bind[b];
        struct target t = {0};
        int rc = 0;
        switch (bd->source) {
        case LP_VALUE: rc = arena_target(x, fn->arena, &fn->f->values[bd->value], bd->view, &t); break;
        case LP_TENSOR: {
            const struct vk_tensor *tn = find_tensor(x, bd->tensor);
            const struct value *p = param_of(fn, bd->tensor);
            if (!tn || !p) {
                rc = fail("tensor %s was not uploaded", bd->tensor);
                break;
            }
            int64_t row0 = bd->row0, nrows = bd->nrows;
            if (sp && p == sp && by_rows(tn, p)) row0 += r0, nrows = rn;   /* this slice of the window */
            rc = tensor_target(x, tn, bd->view, p->dims[0].size, row0, nrows, &t);
            break;
        }
        case LP_KV:
            t = (struct target){x->kv.buf, (VkDeviceSize)bd->layer * x->kv_layer_bytes, x->kv_layer_bytes, 0};
            break;
        case LP_STEP: t = (struct target){x->step.buf, 0, x->step.size / 16 * 16, 0}; break;
        case LP_NONE: t = (struct target){x->zero.buf, 0, x->zero.size, 0}; break;
        }
        if (rc) return fail_prefix("%s launch %d (%s)", fn->f->name, li, x->lp->kernels[l->kernel].name);
        d->vars[LPV_BASE0 + bd->slot] = t.base;
        writes[b] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                           .dstSet = d->set,
                                           .dstBinding = bd->slot,
                                           .descriptorCount = 1};
        if (bd->view == LP_STORAGE) {
            infos[b] = (VkDescriptorBufferInfo){t.buf, t.offset, t.range};
            writes[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            writes[b].pBufferInfo = &infos[b];
        } else {
            uint64_t eb = elem_bytes(bd->view);
            tviews[b] = get_view(x, t.buf, t.offset, t.range / eb * eb, bd->view);
            if (!tviews[b]) return fail_prefix("%s launch %d", fn->f->name, li);
            writes[b].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
            writes[b].pTexelBufferView = &tviews[b];
        }
    }
    return 0;
}

static int build_sets(struct vk_exec *x)
{
    struct vk_fn *fns[3] = {&x->embed, &x->prefill, &x->decode};
    /* first the dispatches (slices decided), counting descriptors */
    uint32_t sets = 0, storage = 0, texel = 0;
    for (int i = 0; i < 3; i++) {
        struct vk_fn *fn = fns[i];
        for (int l = 0; l < fn->lf->nlaunches; l++) {
            const struct lp_launch *la = &fn->lf->launches[l];
            int64_t chunk = 1, nrows = 1;
            if (la->slice_value >= 0 && slices_of(x, fn, la, &chunk, &nrows)) return -1;
            int64_t n = la->slice_value >= 0 ? (nrows + chunk - 1) / chunk : 1;
            fn->d = xrealloc(fn->d, sizeof *fn->d * (size_t)(fn->nd + n));
            for (int64_t s = 0; s < n; s++) {
                struct vk_dispatch *d = &fn->d[fn->nd++];
                memset(d, 0, sizeof *d);
                d->launch = l;
                d->vars[LPV_SLICE_START] = s * chunk;
                d->vars[LPV_SLICE_ROWS] = la->slice_value >= 0 ? (nrows - s * chunk < chunk ? nrows - s * chunk : chunk) : 0;
                sets++;
                for (int b = 0; b < la->nbind; b++) la->bind[b].view == LP_STORAGE ? storage++ : texel++;
            }
        }
    }
    VkDescriptorPoolSize ps[2] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, storage ? storage : 1},
                                  {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, texel ? texel : 1}};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = sets ? sets : 1,
                                      .poolSizeCount = 2,
                                      .pPoolSizes = ps};
    if (vk_check("vkCreateDescriptorPool", vkCreateDescriptorPool(x->dev.dev, &dpi, NULL, &x->dpool))) return -1;
    for (int i = 0; i < 3; i++) {
        struct vk_fn *fn = fns[i];
        for (int k = 0; k < fn->nd; k++) {
            struct vk_dispatch *d = &fn->d[k];
            const struct lp_launch *la = &fn->lf->launches[d->launch];
            VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                              .descriptorPool = x->dpool,
                                              .descriptorSetCount = 1,
                                              .pSetLayouts = &x->dsl[la->kernel]};
            if (vk_check("vkAllocateDescriptorSets", vkAllocateDescriptorSets(x->dev.dev, &ai, &d->set))) return -1;
            VkWriteDescriptorSet w[LP_MAX_BINDINGS];
            VkDescriptorBufferInfo bi[LP_MAX_BINDINGS];
            VkBufferView tv[LP_MAX_BINDINGS];
            if (describe_dispatch(x, fn, d->launch, d->vars[LPV_SLICE_START], d->vars[LPV_SLICE_ROWS], d, w, bi, tv))
                return -1;
            vkUpdateDescriptorSets(x->dev.dev, (uint32_t)la->nbind, w, 0, NULL);
        }
    }
    return 0;
}

int vk_setup(struct vk_exec *x, const struct tensor_source *src)
{
    x->align = vk_offset_alignment(&x->dev);
    if (x->align < 64) x->align = 64;
    if (create_pipelines(x) || collect_tensors(x, src) || place_weights(x) || create_buffers(x) || build_sets(x))
        return -1;
    return 0;
}

void vk_teardown(struct vk_exec *x)
{
    VkDevice dev = x->dev.dev;
    if (!dev) return;
    vkDeviceWaitIdle(dev);
    for (size_t i = 0; i < x->nviews; i++) vkDestroyBufferView(dev, x->views[i].view, NULL);
    free(x->views);
    if (x->dpool) vkDestroyDescriptorPool(dev, x->dpool, NULL);
    for (int k = 0; x->lp && k < x->lp->nkernels; k++) {
        if (x->pipe && x->pipe[k]) vkDestroyPipeline(dev, x->pipe[k], NULL);
        if (x->layout && x->layout[k]) vkDestroyPipelineLayout(dev, x->layout[k], NULL);
        if (x->dsl && x->dsl[k]) vkDestroyDescriptorSetLayout(dev, x->dsl[k], NULL);
    }
    free(x->pipe);
    free(x->layout);
    free(x->dsl);
    for (int b = 0; b < x->nblocks; b++) vk_buffer_destroy(&x->dev, &x->blocks[b]);
    free(x->blocks);
    struct vk_buffer *bufs[] = {&x->arena_embed, &x->arena_main, &x->kv, &x->step, &x->io, &x->zero};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->buf) vk_buffer_destroy(&x->dev, bufs[i]);
    free(x->embed.d);
    free(x->prefill.d);
    free(x->decode.d);
    free(x->tensors);
    free(x->bound);
    for (int t = 0; t < x->nrope; t++) {
        free(x->rope[t].inv_freq);
        free(x->rope[t].inv_freq_long);
    }
    free(x->seq_end);
}
