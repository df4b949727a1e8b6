/* The conversion driver (see weight_convert.h). */
#include "formats/weight_convert.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/progress.h"

/* ---- planning ---- */

struct step {                     /* one MLC parameter, in loader order */
    size_t param;
    const struct hf_tensor *src[PM_MAX_SOURCES];
    int nsrc;
    int64_t rows, k;              /* 2-D: rows x k; 1-D: rows = 1, k = length */
    bool add_one;                 /* Gemma's norms: 1 + w (param_map.h) */
    struct mlc_output outs[3];
    int nouts;
    size_t plan_idx[3];
};

struct src_ref {
    const char *name;
    size_t param;
};

static int cmp_src_ref(const void *a, const void *b)
{
    const struct src_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->param < y->param ? -1 : x->param > y->param);
}

static int cmp_src_name(const void *a, const void *b)
{
    return strcmp(((const struct src_ref *)a)->name, ((const struct src_ref *)b)->name);
}

static void shape_text(char *out, size_t n, int ndim, const int64_t *shape)
{
    size_t len = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < ndim && len < n; i++)
        len += shape[i] < 0 ? (size_t)snprintf(out + len, n - len, "%svocab_size", i ? ", " : "")
                            : (size_t)snprintf(out + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n) snprintf(out + len, n - len, "]");
}

/* Find a parameter's source tensors and check their shapes. */
static int bind_sources(struct hf_source *src, const struct param_map *m, size_t pi, struct step *st)
{
    const struct mlc_param *p = &m->params[pi];
    st->param = pi;
    st->nsrc = p->nsources;
    st->add_one = p->add_one;
    int64_t rows = 0, k = -1;
    for (int i = 0; i < p->nsources; i++) {
        const struct hf_tensor *t = hf_source_find(src, p->sources[i]);
        if (!t)
            return fail("tensor '%s' (for MLC parameter '%s') is not in the weights", p->sources[i], p->name);
        if (t->dtype == DT_INVALID)
            return fail("%s: tensor '%s': dtype %s is not supported (float32, float16 and bfloat16 are)",
                        src->files[t->file].path, t->name, t->dtype_label);
        if (t->ndim != p->ndim) {
            char have[96];
            shape_text(have, sizeof have, t->ndim, t->shape);
            return fail("tensor '%s' has shape %s, but MLC parameter '%s' needs %d dimensions", t->name, have,
                        p->name, p->ndim);
        }
        int64_t tk = p->ndim == 2 ? t->shape[1] : 1;
        if (k >= 0 && tk != k)
            return fail("tensor '%s' has %lld columns, but '%s' has %lld: they cannot be concatenated into '%s'",
                        t->name, (long long)tk, st->src[0]->name, (long long)k, p->name);
        k = tk;
        rows += t->shape[0];
        st->src[i] = t;
    }
    int64_t have[2] = {rows, k};
    bool ok = (p->shape[0] < 0 || p->shape[0] == rows) && (p->ndim == 1 || p->shape[1] == k);
    if (!ok) {
        char a[96], b[96];
        shape_text(a, sizeof a, p->ndim, have);
        shape_text(b, sizeof b, p->ndim, p->shape);
        return fail("parameter '%s' has shape %s, but the configuration expects %s", p->name, a, b);
    }
    if (p->ndim == 1) st->rows = 1, st->k = rows;
    else st->rows = rows, st->k = k;
    return 0;
}

/* MLC counts parameters as files are loaded: a file loaded twice (unloaded
 * in between to make room) is counted twice. Reproduce its cache policy. */
static uint64_t count_source_params(const struct hf_source *src, const struct param_map *m, const struct step *steps,
                                    size_t nsteps)
{
    uint64_t *per_file = xcalloc(src->nfiles + 1, sizeof *per_file);
    for (size_t f = 0; f < src->nfiles; f++)
        for (size_t i = 0; i < src->files[f].nnames; i++)
            if (!param_map_is_unused(m, src->files[f].names[i])) per_file[f] += src->files[f].numels[i];
    uint64_t total = 0;
    if (!src->index_path) {
        total = per_file[0];
    } else {
        bool *cached = xcalloc(src->nfiles + 1, sizeof *cached), *need = xcalloc(src->nfiles + 1, sizeof *need);
        for (size_t s = 0; s < nsteps; s++) {
            memset(need, 0, src->nfiles * sizeof *need);
            bool load = false;
            for (int i = 0; i < steps[s].nsrc; i++) need[steps[s].src[i]->file] = true;
            for (size_t f = 0; f < src->nfiles; f++)
                if (need[f] && !cached[f]) load = true;
            if (!load) continue;
            for (size_t f = 0; f < src->nfiles; f++) {
                if (cached[f] && !need[f]) cached[f] = false;
                if (need[f] && !cached[f]) cached[f] = true, total += per_file[f];
            }
        }
        free(cached);
        free(need);
    }
    free(per_file);
    return total;
}

/* ---- the shard writer ---- */

struct writer {
    struct pool *pool;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int outstanding, max_outstanding;
    char error[512];
    const char *tmp_dir;
    struct tc_plan *plan;
    unsigned char **bufs;
    size_t *remaining;            /* members not yet written, per shard */
};

struct write_job {
    struct writer *w;
    size_t shard;
};

static void write_shard(void *arg)
{
    struct write_job *j = arg;
    struct writer *w = j->w;
    struct tc_plan_shard *sh = &w->plan->shards[j->shard];
    const unsigned char *data = w->bufs[j->shard] ? w->bufs[j->shard] : (const unsigned char *)"";
    hash_hex(HASH_MD5, data, (size_t)sh->nbytes, sh->md5);
    char name[40];
    tc_shard_name(j->shard, name);
    char *path = path_join(w->tmp_dir, name);
    char err[512] = "";
    /* an interrupt removes the temporary directory only once no shard is
     * being created in it */
    cleanup_hold();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) snprintf(err, sizeof err, "%s: cannot create: %s", path, strerror(errno));
    else {
        /* start writing back now without waiting for it (this thread has
         * the next shard to hash); the directory's commit fsyncs every file
         * before the rename that publishes them */
        if (write_all(fd, data, (size_t)sh->nbytes) != 0)
            snprintf(err, sizeof err, "%s: write error: %s", path, strerror(errno));
        else
            sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        close(fd);
    }
    cleanup_release();
    free(path);
    free(w->bufs[j->shard]);
    w->bufs[j->shard] = NULL;
    pthread_mutex_lock(&w->lock);
    if (err[0] && !w->error[0]) memcpy(w->error, err, sizeof err);
    w->outstanding--;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    free(j);
}

static unsigned char *slot(struct writer *w, size_t plan_idx)
{
    const struct tc_plan_tensor *t = &w->plan->tensors[plan_idx];
    if (!w->bufs[t->shard]) w->bufs[t->shard] = xmalloc(w->plan->shards[t->shard].nbytes + 1);
    return w->bufs[t->shard] + t->byte_offset;
}

/* A tensor is complete; hand its shard to the writer when all are. */
static void tensor_done(struct writer *w, size_t plan_idx)
{
    size_t s = w->plan->tensors[plan_idx].shard;
    if (--w->remaining[s]) return;
    pthread_mutex_lock(&w->lock);
    /* a few finished shards at most wait for their md5 and the disk:
     * bounds memory */
    while (w->outstanding >= w->max_outstanding) pthread_cond_wait(&w->changed, &w->lock);
    w->outstanding++;
    pthread_mutex_unlock(&w->lock);
    struct write_job *j = xmalloc(sizeof *j);
    j->w = w;
    j->shard = s;
    pool_submit(w->pool, write_shard, j);
}

/* ---- converting one parameter ---- */

struct work {
    const struct quant_scheme *s;
    const struct step *st;
    const void *data[PM_MAX_SOURCES];
    int64_t row0[PM_MAX_SOURCES + 1]; /* first row of each source */
    size_t elem[PM_MAX_SOURCES];      /* element size of each source */
    unsigned char *out[3];
    size_t chunk_rows, nchunks;
    float fp8_scale;
    struct quant_maxabs_part *parts;  /* one per row (FP8 first pass) */
};

/* Row r of the concatenation, rounded to the model dtype. */
static void load_row(const struct work *w, int64_t r, float *row)
{
    int i = 0;
    while (r >= w->row0[i + 1]) i++;
    const struct hf_tensor *t = w->st->src[i];
    const char *p = (const char *)w->data[i] + (size_t)(r - w->row0[i]) * (size_t)w->st->k * w->elem[i];
    if (!w->st->add_one) {
        quant_to_model(t->dtype, p, (size_t)w->st->k, w->s->model_dtype, row);
        return;
    }
    /* MLC's (x + 1).astype(dtype): the sum rounded to the source's dtype
     * (numpy keeps it), then cast */
    quant_to_model(t->dtype, p, (size_t)w->st->k, t->dtype, row);
    for (int64_t j = 0; j < w->st->k; j++)
        row[j] = quant_round(w->s->model_dtype, quant_round(t->dtype, row[j] + 1.0f));
}

static void group_chunk(void *ctx, size_t c)
{
    const struct work *w = ctx;
    const struct quant_scheme *s = w->s;
    const size_t k = (size_t)w->st->k, n = (size_t)w->st->rows;
    const size_t nw = quant_row_words(s, k), ng = quant_groups(s, k);
    const bool kn = w->st->outs[0].shape[0] != w->st->rows; /* transposed */
    float *row = xmalloc(k * sizeof *row);
    uint32_t *words = xmalloc(nw * sizeof *words);
    float *scales = xmalloc(ng * sizeof(float));
    uint16_t *enc = xmalloc(ng * sizeof *enc);
    size_t end = (c + 1) * w->chunk_rows < n ? (c + 1) * w->chunk_rows : n;
    for (size_t r = c * w->chunk_rows; r < end; r++) {
        load_row(w, (int64_t)r, row);
        quant_group_row(s, row, k, words, scales);
        const uint16_t *sc16 = (const uint16_t *)scales;
        if (s->model_dtype == DT_F32) {
            quant_encode(DT_F32, scales, ng, enc); /* float32 is stored as bf16 */
            sc16 = enc;
        }
        uint32_t *qw = (uint32_t *)w->out[0];
        uint16_t *qs = (uint16_t *)w->out[1];
        if (!kn) {
            memcpy((unsigned char *)qw + r * nw * 4, words, nw * 4);
            memcpy((unsigned char *)qs + r * ng * 2, sc16, ng * 2);
        } else {
            for (size_t i = 0; i < nw; i++) memcpy((unsigned char *)qw + (i * n + r) * 4, &words[i], 4);
            for (size_t g = 0; g < ng; g++) memcpy((unsigned char *)qs + (g * n + r) * 2, &sc16[g], 2);
        }
    }
    free(row), free(words), free(scales), free(enc);
}

static void plain_chunk(void *ctx, size_t c)
{
    const struct work *w = ctx;
    const size_t k = (size_t)w->st->k, n = (size_t)w->st->rows;
    const enum dtype md = w->s->model_dtype;
    float *row = xmalloc(k * sizeof *row);
    size_t end = (c + 1) * w->chunk_rows < n ? (c + 1) * w->chunk_rows : n;
    for (size_t r = c * w->chunk_rows; r < end; r++) {
        load_row(w, (int64_t)r, row);
        quant_encode(md, row, k, w->out[0] + r * k * 2);
    }
    free(row);
}

static void fp8_maxabs_chunk(void *ctx, size_t c)
{
    struct work *w = ctx;
    const size_t k = (size_t)w->st->k, n = (size_t)w->st->rows;
    float *row = xmalloc(k * sizeof *row);
    size_t end = (c + 1) * w->chunk_rows < n ? (c + 1) * w->chunk_rows : n;
    for (size_t r = c * w->chunk_rows; r < end; r++) {
        load_row(w, (int64_t)r, row);
        quant_maxabs_part(row, k, &w->parts[r]);
    }
    free(row);
}

static void fp8_chunk(void *ctx, size_t c)
{
    const struct work *w = ctx;
    const size_t k = (size_t)w->st->k, n = (size_t)w->st->rows;
    float *row = xmalloc(k * sizeof *row);
    size_t end = (c + 1) * w->chunk_rows < n ? (c + 1) * w->chunk_rows : n;
    for (size_t r = c * w->chunk_rows; r < end; r++) {
        load_row(w, (int64_t)r, row);
        quant_fp8(w->s, row, k, w->fp8_scale, w->out[0] + r * k);
    }
    free(row);
}

static void put_f32(unsigned char *dst, float v)
{
    uint16_t b = f32_to_bf16_storage(v);
    memcpy(dst, &b, 2);
}

static int convert_step(struct pool *pool, struct writer *wr, struct hf_source *src, const struct quant_scheme *s,
                        const struct step *st)
{
    struct work w = {.s = s, .st = st};
    struct hf_data d[PM_MAX_SOURCES] = {{0}};
    int rc = 0;
    w.row0[0] = 0;
    for (int i = 0; i < st->nsrc; i++) {
        if (hf_tensor_data(src, st->src[i], &d[i]) != 0) {
            rc = -1;
            goto out;
        }
        w.data[i] = d[i].data;
        w.elem[i] = dtype_size(st->src[i]->dtype);
        w.row0[i + 1] = w.row0[i] + (st->src[i]->ndim == 2 ? st->src[i]->shape[0] : 1);
    }
    for (int i = 0; i < st->nouts; i++) w.out[i] = slot(wr, st->plan_idx[i]);
    /* small chunks (about 64k weights) taken from a shared counter: a
     * thread that the system preempts holds up the others only briefly */
    size_t n = (size_t)st->rows;
    w.chunk_rows = ((size_t)1 << 16) / (size_t)st->k ? ((size_t)1 << 16) / (size_t)st->k : 1;
    w.nchunks = (n + w.chunk_rows - 1) / w.chunk_rows;

    if (st->outs[0].kind == OUT_PLAIN) {
        if (st->rows == 1 && st->nsrc > 1) {
            /* concatenated vectors: convert each piece */
            size_t at = 0;
            float *buf = xmalloc(((size_t)st->k + 1) * sizeof *buf);
            for (int i = 0; i < st->nsrc; i++) {
                size_t len = (size_t)st->src[i]->numel;
                quant_to_model(st->src[i]->dtype, w.data[i], len, s->model_dtype, buf);
                quant_encode(s->model_dtype, buf, len, w.out[0] + at * 2);
                at += len;
            }
            free(buf);
        } else if (st->nsrc == 1 && st->src[0]->dtype == s->model_dtype && s->model_dtype != DT_F32 && !st->add_one) {
            memcpy(w.out[0], w.data[0], (size_t)st->src[0]->numel * 2); /* astype to the same dtype copies */
        } else {
            pool_for(pool, w.nchunks, plain_chunk, &w);
        }
    } else if (s->kind == QUANT_GROUP) {
        pool_for(pool, w.nchunks, group_chunk, &w);
    } else {
        w.parts = xcalloc(n + 1, sizeof *w.parts);
        pool_for(pool, w.nchunks, fp8_maxabs_chunk, &w);
        float maxabs = quant_maxabs_merge(s->model_dtype, w.parts, n);
        free(w.parts);
        w.fp8_scale = s->use_scale ? quant_fp8_scale(s, maxabs) : 1.0f;
        pool_for(pool, w.nchunks, fp8_chunk, &w);
        if (st->nouts > 1) put_f32(w.out[1], w.fp8_scale);
        if (st->nouts > 2) put_f32(w.out[2], f32_from_bits(QUANT_UNCALIBRATED_SCALE_BITS));
    }
    for (int i = 0; i < st->nouts; i++) tensor_done(wr, st->plan_idx[i]);
out:
    for (int i = 0; i < st->nsrc; i++) hf_tensor_release(src, st->src[i], &d[i]);
    return rc;
}

/* ---- publishing ---- */

static bool is_shard_name(const char *name, size_t *index)
{
    unsigned long long v;
    char tail[8];
    if (sscanf(name, "params_shard_%llu%7s", &v, tail) != 2 || strcmp(tail, ".bin")) return false;
    char canon[40];
    tc_shard_name((size_t)v, canon);
    if (strcmp(canon, name)) return false;
    *index = (size_t)v;
    return true;
}

/* Move the new files over the old ones. The JSON goes last, and the old
 * JSON is removed first, so no tensor-cache.json ever describes shards it
 * did not write. */
static int publish(const char *tmp, const char *out, size_t nshards, bool b16)
{
    static const char *const jsons[] = {TC_JSON_NAME, TC_JSON_B16_NAME, TC_JSON_OLD_NAME};
    /* every shard on disk before any rename (their write-back started as
     * they were written, so this mostly waits for the last ones) */
    for (size_t s = 0; s < nshards; s++) {
        char name[40];
        tc_shard_name(s, name);
        char *a = path_join(tmp, name);
        int fd = open(a, O_RDONLY | O_CLOEXEC);
        int rc = fd >= 0 && fsync(fd) == 0 ? 0 : fail("%s: cannot sync: %s", a, strerror(errno));
        if (fd >= 0) close(fd);
        free(a);
        if (rc) return rc;
    }
    for (size_t i = 0; i < 3; i++) {
        char *p = path_join(out, jsons[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            int rc = fail("%s: cannot remove: %s", p, strerror(errno));
            free(p);
            return rc;
        }
        free(p);
    }
    for (size_t s = 0; s < nshards; s++) {
        char name[40];
        tc_shard_name(s, name);
        char *a = path_join(tmp, name), *b = path_join(out, name);
        int rc = rename(a, b) == 0 ? 0 : fail("%s: cannot rename into place: %s", b, strerror(errno));
        free(a);
        free(b);
        if (rc) return rc;
    }
    /* shards of an earlier, larger output */
    DIR *dir = opendir(out);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t idx;
            if (is_shard_name(e->d_name, &idx) && idx >= nshards) {
                char *p = path_join(out, e->d_name);
                unlink(p);
                free(p);
            }
        }
        closedir(dir);
    }
    for (int i = b16 ? 1 : 0; i >= 0; i--) {
        char *a = path_join(tmp, jsons[i]), *b = path_join(out, jsons[i]);
        int rc = rename(a, b) == 0 ? 0 : fail("%s: cannot rename into place: %s", b, strerror(errno));
        free(a);
        free(b);
        if (rc) return rc;
    }
    int fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

static int write_json_file(const char *dir, const char *name, const struct buf *text)
{
    char *p = path_join(dir, name);
    cleanup_hold();
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    int rc = 0;
    if (fd < 0 || write_all(fd, text->data, text->len) != 0 || fsync(fd) != 0)
        rc = fail("%s: cannot write: %s", p, strerror(errno));
    if (fd >= 0) close(fd);
    cleanup_release();
    free(p);
    return rc;
}

/* ---- the whole conversion ---- */

void convert_result_free(struct convert_result *r)
{
    param_map_free(&r->map);
    tc_plan_free(&r->plan);
    free(r->tensors);
    free(r->json_path);
    memset(r, 0, sizeof *r);
}

static int plan_all(const struct convert_options *o, struct convert_result *r, struct hf_source *src,
                    struct step **steps_out, size_t *nsteps_out)
{
    const struct param_map *m = &r->map;
    struct step *steps = xcalloc(m->nparams + 1, sizeof *steps);
    size_t nsteps = 0;
    /* every parameter's sources, looked up by name */
    size_t nrefs = 0, cap = 0;
    struct src_ref *refs = NULL;
    for (size_t p = 0; p < m->nparams; p++) {
        struct step tmp = {0};
        if (bind_sources(src, m, p, &tmp) != 0) goto bad;
        for (int i = 0; i < m->params[p].nsources; i++) {
            refs = xgrow(refs, &cap, nrefs + 1, sizeof *refs);
            refs[nrefs].name = m->params[p].sources[i];
            refs[nrefs++].param = p;
        }
    }
    qsort(refs, nrefs, sizeof *refs, cmp_src_ref);
    /* MLC's loading order: by source tensor order, each parameter the first
     * time one of its sources appears */
    bool *emitted = xcalloc(m->nparams + 1, sizeof *emitted);
    for (size_t t = 0; t < src->ntensors; t++) {
        struct src_ref key = {src->tensors[t].name, 0};
        struct src_ref *hit = bsearch(&key, refs, nrefs, sizeof *refs, cmp_src_name);
        if (!hit) {
            if (!param_map_is_unused(m, src->tensors[t].name)) r->unused_sources++;
            continue;
        }
        while (hit > refs && !strcmp(hit[-1].name, key.name)) hit--;
        for (; hit < refs + nrefs && !strcmp(hit->name, key.name); hit++) {
            if (emitted[hit->param]) continue;
            emitted[hit->param] = true;
            bind_sources(src, m, hit->param, &steps[nsteps]);
            nsteps++;
        }
    }
    free(emitted);
    free(refs);
    refs = NULL;
    r->total_source_params = count_source_params(src, m, steps, nsteps);
    if (!r->total_source_params) {
        fail("%s: the weights hold no parameters", o->model_path);
        goto bad;
    }
    /* MLC's tensor-parallel check on group-quantized Linear layers: the
     * groups along K must split evenly over the shards (o_proj and
     * down_proj have K split, the others the full hidden size) */
    int64_t tp = o->config->tensor_parallel_shards;
    for (size_t i = 0; tp > 1 && r->scheme->kind == QUANT_GROUP && i < nsteps; i++) {
        const struct mlc_param *p = &m->params[steps[i].param];
        if (p->module != PM_LINEAR || (p->final_fc && !r->scheme->quantize_final_fc)) continue;
        bool split_k = strstr(p->name, ".o_proj.") || strstr(p->name, ".down_proj.");
        int64_t in = split_k ? steps[i].k / tp : steps[i].k;
        if ((in * tp / r->scheme->group_size) % tp != 0) {
            fail("%s: in_features %lld has %lld groups of %d, which cannot be split over %lld tensor-parallel "
                 "shards",
                 p->name, (long long)(in * tp), (long long)(in * tp / r->scheme->group_size), r->scheme->group_size,
                 (long long)tp);
            goto bad;
        }
    }
    /* place every output tensor */
    r->tensors = xcalloc(3 * nsteps + 1, sizeof *r->tensors);
    for (size_t i = 0; i < nsteps; i++) {
        struct step *st = &steps[i];
        const struct mlc_param *p = &m->params[st->param];
        st->nouts = param_outputs(r->scheme, p, st->rows, p->ndim == 2 ? st->k : 1, st->outs);
        if (p->ndim == 1) st->outs[0].shape[0] = st->k;
        for (int j = 0; j < st->nouts; j++) {
            long idx = tc_plan_add(&r->plan, st->outs[j].name, st->outs[j].dtype, st->outs[j].ndim,
                                   st->outs[j].shape);
            if (idx < 0) goto bad;
            st->plan_idx[j] = (size_t)idx;
            r->tensors[r->ntensors].plan_index = (size_t)idx;
            r->tensors[r->ntensors].param = st->param;
            r->tensors[r->ntensors++].kind = st->outs[j].kind;
            if (st->outs[j].kind == OUT_CALIBRATION) r->uncalibrated = true;
        }
        for (int j = 0; j < st->nsrc; j++) r->source_bytes += st->src[j]->numel * dtype_size(st->src[j]->dtype);
    }
    tc_plan_finish(&r->plan);
    *steps_out = steps;
    *nsteps_out = nsteps;
    return 0;
bad:
    free(refs);
    free(steps);
    return -1;
}

/* The inference build of a calibrated FP8 model reuses the cache that
 * calibration completed, as MLC-LLM's flow does (convert_weight runs only
 * for the calibration build): re-quantizing would put placeholders back in
 * place of the measured scales. 1: out_dir holds every tensor the plan
 * names, with its dtype and shape, and every activation scale is measured;
 * the plan then describes that cache. 0: no such cache (write as usual).
 * -1: a cache with only some scales measured (refused: writing would lose
 * them). */
static int reuse_calibrated(const struct convert_options *o, struct convert_result *r)
{
    char *json = path_join(o->out_dir, TC_JSON_NAME);
    bool exists = path_exists(json);
    free(json);
    struct tensor_cache tc;
    if (!exists || tensor_cache_open(&tc, o->out_dir) != 0) return 0;
    int rc = 1;
    size_t measured = 0, placeholders = 0;
    for (size_t i = 0; i < r->plan.ntensors && rc == 1; i++) {
        const struct tc_plan_tensor *t = &r->plan.tensors[i];
        const struct tc_record *rec = tensor_cache_find(&tc, t->name);
        bool same = rec && rec->dtype == t->dtype && rec->ndim == t->ndim && rec->nbytes == t->nbytes;
        for (int d = 0; same && d < t->ndim; d++) same = rec->shape[d] == t->shape[d];
        if (!same) rc = 0;
    }
    for (size_t i = 0; i < r->ntensors && rc == 1; i++) {
        if (r->tensors[i].kind != OUT_CALIBRATION) continue;
        const struct tc_record *rec = tensor_cache_find(&tc, r->plan.tensors[r->tensors[i].plan_index].name);
        float v = 0;
        if (tc_record_numel(rec) != 1 || tensor_cache_validate(&tc, false) != 0 ||
            tensor_cache_read_f32(&tc, rec, &v) != 0)
            rc = 0;
        else if (v > 0 && v < 1e30f) measured++;
        else placeholders++;
    }
    if (rc == 1 && !measured) rc = 0; /* placeholders only: writing again changes nothing */
    if (rc == 1 && placeholders) {
        rc = fail("%s holds measured activation scales for some layers and placeholders for %zu others: run the "
                  "calibration again, or remove the tensor cache to start over",
                  tc.json_path, placeholders);
    }
    if (rc == 1) {
        for (size_t i = 0; i < r->plan.ntensors; i++) {
            struct tc_plan_tensor *t = &r->plan.tensors[i];
            const struct tc_record *rec = tensor_cache_find(&tc, t->name);
            t->shard = rec->shard;
            t->byte_offset = rec->byte_offset;
        }
        r->nshards = tc.nshards;
        r->json_path = xstrdup(tc.json_path);
        r->uncalibrated = false;
        r->reused = true;
    }
    tensor_cache_close(&tc);
    return rc;
}

int weight_convert(const struct convert_options *o, struct convert_result *r)
{
    memset(r, 0, sizeof *r);
    tc_plan_init(&r->plan);
    const char *name = o->scheme ? o->scheme : o->config->quantization;
    r->scheme = quant_scheme_by_name(name);
    if (!r->scheme) return fail("unknown quantization scheme '%s' (%s)", name, quant_scheme_names());
    if (r->scheme->kind == QUANT_GROUP && r->scheme->layout == QUANT_KN && o->config->tensor_parallel_shards > 1)
        return fail("%s (KN layout) does not support tensor_parallel_shards > 1", r->scheme->name);
    if (param_map_build(&r->map, o->config) != 0) return -1;

    struct hf_source src;
    if (hf_source_open(&src, o->model_path, o->format) != 0) {
        convert_result_free(r);
        return -1;
    }
    r->format = src.format;
    struct step *steps = NULL;
    size_t nsteps = 0;
    if (plan_all(o, r, &src, &steps, &nsteps) != 0) {
        hf_source_close(&src);
        convert_result_free(r);
        return -1;
    }
    if (src.nquantized)
        warning("%s: %zu tensor%s stored as %s (and similar): dequantized, then quantized again as %s, which "
                "loses accuracy; mlc-check --reference %s measures what it cost (KL divergence)",
                src.files[0].path, src.nquantized, src.nquantized == 1 ? " is" : "s are", src.quantized_type,
                r->scheme->name, src.files[0].path);
    if (r->unused_sources) warning("%zu source tensor%s not used by any MLC parameter", r->unused_sources,
                                   r->unused_sources == 1 ? " is" : "s are");
    if (r->uncalibrated) {
        int reuse = reuse_calibrated(o, r);
        if (reuse != 0) {
            free(steps);
            hf_source_close(&src);
            if (reuse < 0) convert_result_free(r);
            return reuse < 0 ? -1 : 0;
        }
    }

    int rc = -1;
    struct atomic_dir tmp = {0};
    struct pool *pool = NULL;
    struct writer wr = {0};
    if (make_dirs(o->out_dir, 0777) != 0) goto out;
    atomic_clean_stale(o->out_dir);
    char *base = path_join(o->out_dir, "tensor-cache");
    int ok = atomic_dir_begin(&tmp, base);
    free(base);
    if (ok != 0) goto out;

    int nthreads = o->threads > 0 ? o->threads : cpu_count();
    pool = pool_create(nthreads);
    /* md5 is sequential within a shard: shards are hashed in parallel */
    wr.pool = pool_create(nthreads);
    wr.max_outstanding = nthreads + 1;
    pthread_mutex_init(&wr.lock, NULL);
    pthread_cond_init(&wr.changed, NULL);
    wr.tmp_dir = tmp.tmp;
    wr.plan = &r->plan;
    wr.bufs = xcalloc(r->plan.nshards + 1, sizeof *wr.bufs);
    wr.remaining = xcalloc(r->plan.nshards + 1, sizeof *wr.remaining);
    for (size_t s = 0; s < r->plan.nshards; s++) wr.remaining[s] = r->plan.shards[s].nmembers;

    struct progress prog;
    progress_begin(&prog, "converting", r->source_bytes, true);
    int failed = 0;
    for (size_t i = 0; i < nsteps && !failed; i++) {
        if (convert_step(pool, &wr, &src, r->scheme, &steps[i]) != 0) failed = 1;
        pthread_mutex_lock(&wr.lock);
        if (wr.error[0]) failed = 2;
        pthread_mutex_unlock(&wr.lock);
        for (int j = 0; j < steps[i].nsrc; j++)
            progress_add(&prog, steps[i].src[j]->numel * dtype_size(steps[i].src[j]->dtype));
    }
    pool_wait(wr.pool);
    progress_end(&prog);
    if (failed == 2 || (!failed && wr.error[0])) {
        fail("%s", wr.error);
        failed = 1;
    }
    if (failed) goto out;

    json_t *meta = tc_metadata(r->plan.ntensors, r->plan.param_bytes, r->total_source_params);
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (tc_json_text(&r->plan, meta, false, &text) != 0 || write_json_file(tmp.tmp, TC_JSON_NAME, &text) != 0)
        failed = 1;
    if (!failed && r->plan.any_f32) {
        buf_reset(&text);
        if (tc_json_text(&r->plan, meta, true, &text) != 0 || write_json_file(tmp.tmp, TC_JSON_B16_NAME, &text) != 0)
            failed = 1;
        r->b16_written = true;
    }
    buf_free(&text);
    json_decref(meta);
    if (failed) goto out;
    /* an interrupt waits for the publishing to end: then the new result is
     * in place, and the temporary directory empty */
    cleanup_hold();
    int published = publish(tmp.tmp, o->out_dir, r->plan.nshards, r->b16_written);
    cleanup_release();
    if (published != 0) goto out;
    r->json_path = path_join(o->out_dir, TC_JSON_NAME);
    r->nshards = r->plan.nshards;
    rc = 0;
out:
    if (wr.pool) {
        pool_destroy(wr.pool);
        pthread_mutex_destroy(&wr.lock);
        pthread_cond_destroy(&wr.changed);
        for (size_t s = 0; s < r->plan.nshards; s++) free(wr.bufs[s]);
        free(wr.bufs);
        free(wr.remaining);
    }
    if (pool) pool_destroy(pool);
    atomic_dir_abort(&tmp);
    free(steps);
    hf_source_close(&src);
    if (rc != 0) convert_result_free(r);
    return rc;
}
