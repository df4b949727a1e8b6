/* The Vulkan executor at every call: sequences and their KV slots, the
 * step data, and one command buffer a step. */
#include "common/engine/vk_exec.h"
#include "common/buf.h"
#include "common/engine/vk_internal.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process: with lavapipe, the device's threads too
 * (a measure of work that a busy machine does not inflate as it does the
 * wall time). */
static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int vk_exec_open(struct vk_exec **out, const struct module *m, const struct launch_plan *lp,
                 const struct tensor_source *src, const struct vk_exec_options *o)
{
    *out = NULL;
    struct vk_exec *x = xcalloc(1, sizeof *x);
    x->m = m;
    x->lp = lp;
    x->profile = o->profile;
    x->max_seq = o->max_sequences > 0 && o->max_sequences < m->dims.max_batch_size ? o->max_sequences
                                                                                    : m->dims.max_batch_size;
    if (x->max_seq < 1) x->max_seq = 1;
    if (vk_device_open(&x->dev, o->device)) {
        free(x);
        return -1;
    }
    snprintf(x->device_name, sizeof x->device_name, "%s (vulkan:%d)", x->dev.props.deviceName, x->dev.index);
    x->in_use = xcalloc((size_t)x->max_seq, sizeof *x->in_use);
    x->length = xcalloc((size_t)x->max_seq, sizeof *x->length);
    x->stats = xcalloc((size_t)lp->nkernels + 1, sizeof *x->stats);
    if (vk_setup(x, src)) {
        fail_prefix("%s", x->device_name);
        vk_exec_close(x);
        return -1;
    }
    if (x->profile && x->dev.timestamps) {
        uint32_t most = 0;
        const struct vk_fn *fns[3] = {&x->embed, &x->prefill, &x->decode};
        for (int i = 0; i < 3; i++) most += (uint32_t)fns[i]->nd;
        x->nqueries = most + 4;
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = x->nqueries};
        if (vk_check("vkCreateQueryPool", vkCreateQueryPool(x->dev.dev, &qi, NULL, &x->queries))) {
            vk_exec_close(x);
            return -1;
        }
    }
    *out = x;
    return 0;
}

void vk_exec_close(struct vk_exec *x)
{
    if (!x) return;
    if (x->queries) vkDestroyQueryPool(x->dev.dev, x->queries, NULL);
    vk_teardown(x);
    vk_device_close(&x->dev);
    free(x->in_use);
    free(x->length);
    free(x->stats);
    free(x->cur_seq);
    free(x->cur_pos);
    free(x);
}

const char *vk_exec_device(const struct vk_exec *x)
{
    return x->device_name;
}

/* ---- sequences ---- */

int vk_exec_new_sequence(struct vk_exec *x)
{
    for (int i = 0; i < x->max_seq; i++)
        if (!x->in_use[i]) {
            x->in_use[i] = true;
            x->length[i] = 0;
            return i;
        }
    return fail("KV cache: all %d sequences are in use", x->max_seq);
}

void vk_exec_free_sequence(struct vk_exec *x, int seq)
{
    if (seq < 0 || seq >= x->max_seq) return;
    x->in_use[seq] = false;
    x->length[seq] = 0;
}

int64_t vk_exec_sequence_length(const struct vk_exec *x, int seq)
{
    return seq >= 0 && seq < x->max_seq ? x->length[seq] : -1;
}

bool vk_exec_sequence_full(const struct vk_exec *x, int seq)
{
    return !x->window && seq >= 0 && seq < x->max_seq && x->length[seq] + 1 > x->capacity;
}

static int check_room(const struct vk_exec *x, int seq, int64_t n)
{
    if (seq < 0 || seq >= x->max_seq || !x->in_use[seq]) return fail("KV cache: no sequence %d", seq);
    if (!x->window && x->length[seq] + n > x->capacity)
        return fail("context window exceeded: %lld tokens in the cache + %lld new > %lld", (long long)x->length[seq],
                    (long long)n, (long long)x->capacity);
    return 0;
}

static int64_t slot_of(const struct vk_exec *x, int64_t pos)
{
    if (!x->window || pos < x->sink) return pos;
    return x->sink + (pos - x->sink) % (x->capacity - x->sink);
}

/* Step data of a call (formats/launch_plan.h): sequences, positions, KV
 * slots, and the rotary angles' cos and sin computed as the CPU kernels
 * compute them. */
static void write_step(struct vk_exec *x, const struct vk_fn *fn, const int *seq, const int64_t *pos, int64_t rows)
{
    uint32_t *w = x->step.map;
    int64_t B = fn->bound, half = x->head_dim / 2;
    for (int64_t r = 0; r < rows; r++) {
        w[LP_STEP_SEQ(B) + r] = (uint32_t)seq[r];
        w[LP_STEP_POS(B) + r] = (uint32_t)pos[r];
        w[LP_STEP_SLOT(B) + r] = (uint32_t)slot_of(x, pos[r]);
        float *cs = (float *)(void *)(w + LP_STEP_ROPE(B) + r * 2 * half);
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)pos[r] * x->inv_freq[i];
            cs[2 * i] = (float)cos(angle);
            cs[2 * i + 1] = (float)sin(angle);
        }
    }
}

/* ---- recording ---- */

static void barrier(VkCommandBuffer cb, VkPipelineStageFlags from, VkAccessFlags src, VkPipelineStageFlags to,
                    VkAccessFlags dst)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = src, .dstAccessMask = dst};
    vkCmdPipelineBarrier(cb, from, to, 0, 1, &mb, 0, NULL, 0, NULL);
}

static void compute_barrier(VkCommandBuffer cb)
{
    barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
}

struct recording {
    VkCommandBuffer cb;
    uint32_t query;              /* next timestamp */
    int *kernel_of_query;        /* which kernel each interval timed */
};

static int record_dispatch(struct vk_exec *x, struct recording *rec, const struct vk_fn *fn, const struct vk_dispatch *d,
                           int64_t rows)
{
    const struct lp_launch *l = &fn->lf->launches[d->launch];
    int64_t vars[LP_NVARS];
    memcpy(vars, d->vars, sizeof vars);
    vars[LPV_ROWS] = rows;
    uint32_t push[LP_MAX_PUSH];
    int64_t g[3], v;
    for (int i = 0; i < l->npush; i++) {
        if (lp_expr_eval(&l->push[i], vars, LP_NVARS, &v)) return -1;
        push[i] = (uint32_t)v;
    }
    for (int i = 0; i < 3; i++) {
        if (lp_expr_eval(&l->groups[i], vars, LP_NVARS, &g[i])) return -1;
        if (g[i] > x->dev.props.limits.maxComputeWorkGroupCount[i])
            return fail("%s launch %d: %lld workgroups in dimension %d, the device allows %u", fn->f->name, d->launch,
                        (long long)g[i], i, x->dev.props.limits.maxComputeWorkGroupCount[i]);
    }
    if (l->barrier) compute_barrier(rec->cb);
    if (!g[0] || !g[1] || !g[2]) return 0;
    vkCmdBindPipeline(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, x->pipe[l->kernel]);
    vkCmdBindDescriptorSets(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, x->layout[l->kernel], 0, 1, &d->set, 0, NULL);
    if (l->npush)
        vkCmdPushConstants(rec->cb, x->layout[l->kernel], VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)l->npush * 4, push);
    vkCmdDispatch(rec->cb, (uint32_t)g[0], (uint32_t)g[1], (uint32_t)g[2]);
    if (x->queries && rec->query < x->nqueries) {
        rec->kernel_of_query[rec->query] = l->kernel;
        vkCmdWriteTimestamp(rec->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, x->queries, rec->query++);
    }
    return 0;
}

/* MLC_VK_PERTURB: the first floats of one value, overwritten with 1.0 after
 * the launches of the op (or fused run of ops) that writes it. */
static void perturb(const struct vk_fn *fn, VkCommandBuffer cb, int op, int nops)
{
    if (fn->perturb < 0) return;
    bool writes = false;
    for (int i = op; i < op + nops; i++)
        for (int k = 0; k < fn->f->ops[i].nout; k++) writes = writes || fn->f->ops[i].out[k] == fn->perturb;
    if (!writes) return;
    const struct value *v = &fn->f->values[fn->perturb];
    VkDeviceSize n = v->nbytes < 16 ? (VkDeviceSize)v->nbytes / 4 * 4 : 16;
    barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_TRANSFER_WRITE_BIT);
    if (n) vkCmdFillBuffer(cb, fn->arena->buf, (VkDeviceSize)v->offset, n, 0x3f800000u);
    barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
}

/* The dispatches of ops [op0, op1) of a function. */
static int record_ops(struct vk_exec *x, struct recording *rec, const struct vk_fn *fn, int64_t rows, int op0, int op1)
{
    for (int k = 0; k < fn->nd; k++) {
        const struct vk_dispatch *d = &fn->d[k];
        int op = fn->lf->launches[d->launch].op;
        if (op < op0 || op >= op1) continue;
        if (record_dispatch(x, rec, fn, d, rows)) return -1;
        bool last = k + 1 == fn->nd || fn->lf->launches[fn->d[k + 1].launch].op != op;
        if (last) perturb(fn, rec->cb, op, fn->lf->launches[d->launch].nops);
    }
    return 0;
}

static void copy(VkCommandBuffer cb, VkBuffer from, VkDeviceSize at, VkBuffer to, VkDeviceSize to_at, VkDeviceSize n)
{
    VkBufferCopy r = {at, to_at, n};
    if (n) vkCmdCopyBuffer(cb, from, to, 1, &r);
}

static int begin_recording(struct vk_exec *x, struct recording *rec)
{
    memset(rec, 0, sizeof *rec);
    if (vk_begin(&x->dev, &rec->cb)) return -1;
    if (x->queries) {
        rec->kernel_of_query = xcalloc(x->nqueries + 1, sizeof *rec->kernel_of_query);
        vkCmdResetQueryPool(rec->cb, x->queries, 0, x->nqueries);
    }
    return 0;
}

static void timestamp(struct vk_exec *x, struct recording *rec)
{
    if (!x->queries || rec->query >= x->nqueries) return;
    rec->kernel_of_query[rec->query] = -1;
    vkCmdWriteTimestamp(rec->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, x->queries, rec->query++);
}

/* Submit, wait, and add the timed intervals to the per-kernel figures. */
static int finish_recording(struct vk_exec *x, struct recording *rec)
{
    int rc = vk_submit_wait(&x->dev, rec->cb);
    if (rc == 0 && x->queries && rec->query > 1) {
        uint64_t *t = xcalloc(rec->query, sizeof *t);
        rc = vk_check("vkGetQueryPoolResults",
                      vkGetQueryPoolResults(x->dev.dev, x->queries, 0, rec->query, sizeof *t * rec->query, t,
                                            sizeof *t, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        for (uint32_t q = 1; rc == 0 && q < rec->query; q++) {
            int k = rec->kernel_of_query[q];
            if (k < 0) continue;
            x->stats[k].ms += (double)(t[q] - t[q - 1]) * x->dev.props.limits.timestampPeriod * 1e-6;
            x->stats[k].dispatches++;
        }
        free(t);
    }
    free(rec->kernel_of_query);
    rec->kernel_of_query = NULL;
    return rc;
}

/* What the device wrote to the transfer buffer, visible to the host. */
static int invalidate_io(struct vk_exec *x)
{
    if (x->io.coherent) return 0;
    VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = x->io.mem, .size = VK_WHOLE_SIZE};
    return vk_check("vkInvalidateMappedMemoryRanges", vkInvalidateMappedMemoryRanges(x->dev.dev, 1, &r));
}

/* One step: embed `rows` ids, then run `fn` over them; its output (rows of
 * logits) into logits. */
static int run_step(struct vk_exec *x, struct vk_fn *fn, const int32_t *ids, const int *seq, const int64_t *pos,
                    int64_t rows, float *logits)
{
    for (int64_t i = 0; i < rows; i++)
        if (ids[i] < 0 || ids[i] >= x->m->dims.vocab_size)
            return fail("token id %d is outside the vocabulary (0..%lld)", ids[i], (long long)x->m->dims.vocab_size - 1);
    double t0 = now(), c0 = cpu_now();
    memcpy(x->io.map, ids, sizeof *ids * (size_t)rows);
    write_step(x, fn, seq, pos, rows);
    if (vk_buffer_flush(&x->dev, &x->io) || vk_buffer_flush(&x->dev, &x->step)) return -1;
    const struct value *in_e = &x->embed.f->values[x->embed.input], *out_e = &x->embed.f->values[x->embed.output];
    const struct value *in_f = &fn->f->values[fn->input], *out_f = &fn->f->values[fn->output];
    int64_t hidden = out_e->dims[1].size, out_rows = out_f->dims[0].var == DIM_ROWS ? rows : out_f->dims[0].size;
    VkDeviceSize out_bytes = (VkDeviceSize)(out_rows * out_f->dims[1].size) * 4;
    struct recording rec;
    if (begin_recording(x, &rec)) return -1;
    VkCommandBuffer cb = rec.cb;
    copy(cb, x->io.buf, 0, x->arena_embed.buf, (VkDeviceSize)in_e->offset, (VkDeviceSize)rows * 4);
    barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    timestamp(x, &rec);
    int rc = record_ops(x, &rec, &x->embed, rows, 0, x->embed.f->nops);
    barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    copy(cb, x->arena_embed.buf, (VkDeviceSize)out_e->offset, fn->arena->buf, (VkDeviceSize)in_f->offset,
         (VkDeviceSize)(rows * hidden) * 4);
    barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    timestamp(x, &rec);
    if (rc == 0) rc = record_ops(x, &rec, fn, rows, 0, fn->f->nops);
    barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_TRANSFER_READ_BIT);
    copy(cb, fn->arena->buf, (VkDeviceSize)out_f->offset, x->io.buf, x->io_out, out_bytes);
    barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
            VK_ACCESS_HOST_READ_BIT);
    if (rc) {
        vkEndCommandBuffer(cb);
        vkFreeCommandBuffers(x->dev.dev, x->dev.pool, 1, &cb);
        free(rec.kernel_of_query);
        return -1;
    }
    if (finish_recording(x, &rec) || invalidate_io(x)) return -1;
    memcpy(logits, (const unsigned char *)x->io.map + x->io_out, out_bytes);
    int which = fn == &x->prefill ? 1 : 2;
    x->fn_seconds[which] += now() - t0;
    x->fn_cpu_seconds[which] += cpu_now() - c0;
    x->fn_calls[which]++;
    x->fn_rows[which] += rows;
    return 0;
}

int vk_exec_prefill(struct vk_exec *x, int seq, const int32_t *ids, int64_t n, float *logits)
{
    if (n < 1 || n > x->prefill.bound)
        return fail("prefill: %lld rows requested, the library allows 1 to %lld", (long long)n, (long long)x->prefill.bound);
    if (check_room(x, seq, n)) return -1;
    int *seqs = xmalloc(sizeof *seqs * (size_t)n);
    int64_t *pos = xmalloc(sizeof *pos * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        seqs[i] = seq;
        pos[i] = x->length[seq] + i;
    }
    int rc = run_step(x, &x->prefill, ids, seqs, pos, n, logits);
    if (rc == 0) x->length[seq] += n;
    free(seqs);
    free(pos);
    return rc;
}

int vk_exec_decode(struct vk_exec *x, const int *seqs, const int32_t *ids, int64_t n, float *logits)
{
    if (n < 1 || n > x->decode.bound)
        return fail("decode: %lld rows requested, the library allows 1 to %lld", (long long)n, (long long)x->decode.bound);
    for (int64_t i = 0; i < n; i++) {
        if (check_room(x, seqs[i], 1)) return -1;
        for (int64_t k = 0; k < i; k++)
            if (seqs[k] == seqs[i]) return fail("decode: sequence %d appears twice in one batch", seqs[i]);
    }
    int64_t *pos = xmalloc(sizeof *pos * (size_t)n);
    for (int64_t i = 0; i < n; i++) pos[i] = x->length[seqs[i]];
    int rc = run_step(x, &x->decode, ids, seqs, pos, n, logits);
    if (rc == 0)
        for (int64_t i = 0; i < n; i++) x->length[seqs[i]]++;
    free(pos);
    return rc;
}

/* ---- profile ---- */

struct row {
    int kernel;
    double ms;
};

static int by_time(const void *a, const void *b)
{
    double x = ((const struct row *)a)->ms, y = ((const struct row *)b)->ms;
    return x < y ? 1 : x > y ? -1 : ((const struct row *)a)->kernel - ((const struct row *)b)->kernel;
}

/* The ops a kernel carries out, for the table ("matmul", "add_rms_norm"). */
static const char *ops_of(const struct vk_exec *x, int k)
{
    const struct vk_fn *fns[3] = {&x->embed, &x->prefill, &x->decode};
    for (int i = 0; i < 3; i++)
        for (int l = 0; l < fns[i]->lf->nlaunches; l++)
            if (fns[i]->lf->launches[l].kernel == k) return op_name(fns[i]->f->ops[fns[i]->lf->launches[l].op].kind);
    return "?";
}

void vk_exec_print_profile(const struct vk_exec *x, FILE *f)
{
    static const char *names[3] = {"embed", "prefill", "decode"};
    fprintf(f, "profile: %s\n", x->device_name);
    for (int i = 1; i < 3; i++)
        if (x->fn_calls[i])
            fprintf(f, "  %-8s %6lld calls %8lld tokens %10.1f ms %10.2f tokens/s %8.1f CPU ms/token\n", names[i],
                    (long long)x->fn_calls[i], (long long)x->fn_rows[i], x->fn_seconds[i] * 1e3,
                    x->fn_seconds[i] > 0 ? (double)x->fn_rows[i] / x->fn_seconds[i] : 0.0,
                    1e3 * x->fn_cpu_seconds[i] / (double)x->fn_rows[i]);
    if (!x->queries) {
        fprintf(f, "  (no kernel times: %s)\n", x->dev.timestamps ? "not recorded" : "the queue writes no timestamps");
        return;
    }
    int n = x->lp->nkernels;
    struct row *rows = xcalloc((size_t)n + 1, sizeof *rows);
    double total = 0;
    for (int k = 0; k < n; k++) {
        rows[k] = (struct row){k, x->stats[k].ms};
        total += x->stats[k].ms;
    }
    qsort(rows, (size_t)n, sizeof *rows, by_time);
    fprintf(f, "  %-16s %-14s %10s %11s %7s %10s\n", "kernel", "op", "dispatches", "total ms", "share", "mean us");
    for (int i = 0; i < n; i++) {
        const struct vk_kernel_stats *s = &x->stats[rows[i].kernel];
        if (!s->dispatches) continue;
        fprintf(f, "  %-16s %-14s %10lld %11.2f %6.1f%% %10.1f\n", x->lp->kernels[rows[i].kernel].name,
                ops_of(x, rows[i].kernel), (long long)s->dispatches, s->ms, total > 0 ? 100 * s->ms / total : 0.0,
                1e3 * s->ms / (double)s->dispatches);
    }
    fprintf(f, "  %-16s %-14s %10s %11.2f\n", "all kernels", "", "", total);
    free(rows);
}

/* ---- op by op ---- */

static struct vk_fn *fn_named(struct vk_exec *x, const char *name)
{
    return !strcmp(name, "embed") ? &x->embed : !strcmp(name, "prefill") ? &x->prefill
                                           : !strcmp(name, "decode") ? &x->decode : NULL;
}

int vk_exec_step_begin(struct vk_exec *x, const char *name, const int *seqs, int64_t rows)
{
    struct vk_fn *fn = fn_named(x, name);
    if (!fn) return fail("no function %s", name);
    if (rows < 1 || rows > fn->bound) return fail("%s: %lld rows, the library allows 1 to %lld", name, (long long)rows, (long long)fn->bound);
    free(x->cur_seq);
    free(x->cur_pos);
    x->cur_seq = xmalloc(sizeof *x->cur_seq * (size_t)rows);
    x->cur_pos = xmalloc(sizeof *x->cur_pos * (size_t)rows);
    for (int64_t i = 0; i < rows; i++) {
        int s = seqs[i];
        int64_t before = 0;
        for (int64_t k = 0; k < i; k++) before += seqs[k] == s;
        if (check_room(x, s, before + 1)) return -1;
        x->cur_seq[i] = s;
        x->cur_pos[i] = x->length[s] + before;
    }
    write_step(x, fn, x->cur_seq, x->cur_pos, rows);
    if (vk_buffer_flush(&x->dev, &x->step)) return -1;
    x->cur = fn;
    x->cur_rows = rows;
    return 0;
}

int vk_exec_op_span(const struct vk_exec *x, int op)
{
    const struct lp_function *lf = x->cur ? x->cur->lf : NULL;
    for (int l = 0; lf && l < lf->nlaunches; l++)
        if (lf->launches[l].op == op) return lf->launches[l].nops;
    return 1;
}

int vk_exec_step_op(struct vk_exec *x, int op)
{
    struct recording rec;
    if (!x->cur) return fail("no call begun");
    if (begin_recording(x, &rec)) return -1;
    int rc = record_ops(x, &rec, x->cur, x->cur_rows, op, op + 1);
    barrier(rec.cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_TRANSFER_READ_BIT);
    if (rc) {
        vkEndCommandBuffer(rec.cb);
        vkFreeCommandBuffers(x->dev.dev, x->dev.pool, 1, &rec.cb);
        free(rec.kernel_of_query);
        return -1;
    }
    return finish_recording(x, &rec);
}

/* Room for `bytes` after io_out in the transfer buffer (bisection moves
 * whole activations through it): a bigger buffer when needed. */
static int io_room(struct vk_exec *x, size_t bytes)
{
    if (bytes <= x->io.size - x->io_out) return 0;
    struct vk_buffer bigger;
    if (vk_buffer_create(&x->dev, x->io_out + bytes + 64, true, &bigger, "input and output transfers")) return -1;
    vk_buffer_destroy(&x->dev, &x->io);
    x->io = bigger;
    return 0;
}

static int transfer_value(struct vk_exec *x, int value, size_t bytes, bool to_device)
{
    if (!x->cur || value < 0 || value >= x->cur->f->nvalues) return fail("no such value");
    const struct value *v = &x->cur->f->values[value];
    if (v->offset < 0 || (int64_t)bytes > v->nbytes) return fail("value %s: cannot move %zu bytes", v->name, bytes);
    VkCommandBuffer cb;
    if (vk_begin(&x->dev, &cb)) return -1;
    if (to_device) copy(cb, x->io.buf, x->io_out, x->cur->arena->buf, (VkDeviceSize)v->offset, bytes);
    else copy(cb, x->cur->arena->buf, (VkDeviceSize)v->offset, x->io.buf, x->io_out, bytes);
    barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT);
    return vk_submit_wait(&x->dev, cb);
}

int vk_exec_step_read(struct vk_exec *x, int value, void *out, size_t bytes)
{
    if (io_room(x, bytes) || transfer_value(x, value, bytes, false) || invalidate_io(x)) return -1;
    memcpy(out, (const unsigned char *)x->io.map + x->io_out, bytes);
    return 0;
}

int vk_exec_step_write(struct vk_exec *x, int value, const void *data, size_t bytes)
{
    if (io_room(x, bytes)) return -1;
    memcpy((unsigned char *)x->io.map + x->io_out, data, bytes);
    if (vk_buffer_flush(&x->dev, &x->io)) return -1;
    return transfer_value(x, value, bytes, true);
}

void vk_exec_step_end(struct vk_exec *x, bool commit)
{
    if (x->cur && commit && x->cur != &x->embed)
        for (int64_t i = 0; i < x->cur_rows; i++) x->length[x->cur_seq[i]]++;
    x->cur = NULL;
}
