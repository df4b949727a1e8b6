/* The Vulkan executor's state, shared by vk_setup.c (what is built once at
 * open) and vk_exec.c (what happens at every call). Private to those two. */
#ifndef MLC_VK_INTERNAL_H
#define MLC_VK_INTERNAL_H

#include "common/engine/vk_device.h"
#include "common/engine/vk_exec.h"

/* A weight tensor in device memory. */
struct vk_tensor {
    const char *name;
    const struct tensor_view *view;
    int block;                  /* which of x->blocks */
    VkDeviceSize offset;        /* aligned */
    uint64_t bytes;             /* on the device */
    bool widen;                 /* float32 held as bfloat16 halves: widened on upload */
};

struct vk_view {
    VkBuffer buf;
    VkDeviceSize offset, range;
    VkFormat format;
    VkBufferView view;
};

/* One dispatch of a launch (several for a weight bound in slices). */
struct vk_dispatch {
    int launch;
    VkDescriptorSet set;
    int64_t vars[LP_NVARS];     /* bases and slice; [LPV_ROWS] set per call */
};

struct vk_fn {
    const struct function *f;
    const struct lp_function *lf;
    struct vk_buffer *arena;
    struct vk_dispatch *d;
    int nd;
    int64_t bound;              /* row bound */
    int input, output;          /* value indices */
    int perturb;                /* MLC_VK_PERTURB's value here, or -1 */
};

struct vk_kernel_stats {
    double ms;
    int64_t dispatches;
};

struct vk_exec {
    struct vk_device dev;
    char device_name[320];
    const struct module *m;
    const struct launch_plan *lp;
    struct bound_weight *bound;     /* every parameter value, bound (for checks) */
    int nbound;
    /* kernels */
    VkDescriptorSetLayout *dsl;
    VkPipelineLayout *layout;
    VkPipeline *pipe;
    VkDescriptorPool dpool;
    /* memory */
    uint64_t align;
    struct vk_buffer *blocks;
    int nblocks;
    struct vk_tensor *tensors;
    int ntensors;
    struct vk_buffer arena_embed, arena_main, kv, step, io, zero;
    VkDeviceSize kv_layer_bytes, io_out;
    struct vk_view *views;
    size_t nviews, cap_views;
    struct vk_fn embed, prefill, decode;
    /* sequences */
    int max_seq;
    bool *in_use;
    int64_t *length;
    int64_t capacity;
    int window, sink, head_dim;
    float *inv_freq;
    /* the call being made (op by op: between step_begin and step_end) */
    struct vk_fn *cur;
    int64_t cur_rows;
    int *cur_seq;
    int64_t *cur_pos;
    /* profile */
    bool profile;
    VkQueryPool queries;
    uint32_t nqueries;
    struct vk_kernel_stats *stats;  /* per kernel */
    double fn_seconds[3], fn_cpu_seconds[3];
    int64_t fn_calls[3], fn_rows[3];
};

/* vk_setup.c */
int vk_setup(struct vk_exec *x, const struct tensor_source *src);
void vk_teardown(struct vk_exec *x);

#endif
