/* The model library: NAME-TARGET.tar, written with libarchive.
 *
 *   metadata.json     MLC's library metadata keys (mlc-formats.md §7) in
 *                     MLC's order, then mlc-pipe's own (target, passes, ...
 *                     and for Vulkan the kernel list)
 *   plan.msgpack      the lowered module: the execution plan the engine runs
 *   launches.msgpack  vulkan target: the kernel launches of each function
 *                     (formats/launch_plan.h)
 *   kernels/NAME.spv  vulkan target: one SPIR-V blob per specialized kernel
 *
 * The archive is byte-for-byte reproducible: fixed entry order, mtime 0,
 * uid/gid 0, mode 0644. Reading checks every entry (regular files with the
 * expected names only, sizes bounded) before trusting the plan. */
#ifndef MLC_LIBRARY_H
#define MLC_LIBRARY_H

#include <jansson.h>

#include "formats/launch_plan.h"
#include "formats/module.h"

#define LIBRARY_MAX_METADATA (16u << 20)
#define LIBRARY_MAX_PLAN (1u << 30)
#define LIBRARY_MAX_KERNEL (16u << 20)

struct library {
    char *path;
    json_t *metadata;
    struct module module;
    const char *target;          /* from the metadata */
    struct launch_plan *launches;/* vulkan target (kernels checked), else NULL */
};

struct library_options {
    const char *target;          /* "cpu" or "vulkan" */
    const char *system_lib_prefix;
    int64_t tensor_parallel_shards;
    int64_t pipeline_parallel_stages;
};

/* The metadata object for a module. */
json_t *library_metadata(const struct module *m, const struct library_options *o);
/* The Vulkan target's "kernels" list: name, shader, file, bytes, sha256. */
void library_metadata_add_kernels(json_t *metadata, const struct launch_plan *lp);
/* Write the archive atomically. */
int library_write(const char *path, const struct module *m, const json_t *metadata);
/* The same with the Vulkan plan and its kernels' blobs. */
int library_write_vulkan(const char *path, const struct module *m, const json_t *metadata,
                         const struct launch_plan *lp);
int library_read(const char *path, struct library *lib);
void library_free(struct library *lib);

#endif
