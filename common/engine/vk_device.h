/* A Vulkan device for the engine: choosing and opening one (a discrete GPU
 * first when the loader offers one, lavapipe on machines without a GPU),
 * buffers in its memory, one queue with a command pool and a fence.
 *
 * Every failing Vulkan call becomes fail("vkCall: VK_ERROR_... (code)"),
 * naming the call and its result. */
#ifndef MLC_VK_DEVICE_H
#define MLC_VK_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

struct buf;

struct vk_device {
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool pool;
    VkFence fence;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint64_t max_allocation;     /* maxMemoryAllocationSize */
    uint32_t subgroup_size;
    bool timestamps;             /* the queue writes timestamps */
    int index;                   /* in the loader's enumeration order */
    uint64_t weight_limit;       /* test switch MLC_VK_WEIGHT_BINDING_LIMIT: lower weights' binding limit */
    bool force_staging;          /* test switch MLC_VK_STAGING=1: upload as if memory were not mappable */
};

struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;                   /* host-visible memory: mapped for good */
    bool coherent;
};

const char *vk_result_name(VkResult r);
/* fail("CALL: RESULT") for a result other than VK_SUCCESS; 0 otherwise. */
int vk_check(const char *call, VkResult r);

/* One line per device the loader offers: "N: NAME (TYPE, Vulkan X.Y.Z,
 * MEMORY), " and "default" on the one `vulkan` picks. */
int vk_list_devices(struct buf *out);
/* Open device `index` (the enumeration order), or the best one for -1. */
int vk_device_open(struct vk_device *d, int index);
void vk_device_close(struct vk_device *d);
const char *vk_device_type_name(VkPhysicalDeviceType t);

/* A buffer for storage and texel views and transfers: in device-local
 * memory, or (host) in host-visible memory, mapped. */
int vk_buffer_create(struct vk_device *d, VkDeviceSize size, bool host, struct vk_buffer *b, const char *what);
void vk_buffer_destroy(struct vk_device *d, struct vk_buffer *b);
/* Host writes to a mapped buffer made visible to the device (a no-op for
 * coherent memory). */
int vk_buffer_flush(struct vk_device *d, struct vk_buffer *b);
/* Largest range one binding of `texel_bytes`-sized elements (0: a storage
 * buffer) may cover; for a weight, lowered by the test switch. */
uint64_t vk_binding_limit(const struct vk_device *d, uint32_t texel_bytes);
uint64_t vk_weight_binding_limit(const struct vk_device *d, uint32_t texel_bytes);
/* Alignment that suits both texel views and storage bindings. */
uint64_t vk_offset_alignment(const struct vk_device *d);

/* Record-and-submit helpers: a fresh primary command buffer, and its
 * submission followed by a wait on the device's fence. */
int vk_begin(struct vk_device *d, VkCommandBuffer *cb);
int vk_submit_wait(struct vk_device *d, VkCommandBuffer cb);

#endif
