#include "common/engine/vk_device.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vk_result_name(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
    R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_EVENT_SET) R(VK_EVENT_RESET) R(VK_INCOMPLETE)
    R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY) R(VK_ERROR_INITIALIZATION_FAILED)
    R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED) R(VK_ERROR_LAYER_NOT_PRESENT)
    R(VK_ERROR_EXTENSION_NOT_PRESENT) R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
    R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED) R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_UNKNOWN)
    R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_INVALID_EXTERNAL_HANDLE) R(VK_ERROR_FRAGMENTATION)
    R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) R(VK_PIPELINE_COMPILE_REQUIRED) R(VK_ERROR_INVALID_SHADER_NV)
#undef R
    default: return "VK_ERROR (unnamed)";
    }
}

int vk_check(const char *call, VkResult r)
{
    if (r == VK_SUCCESS) return 0;
    return fail("%s: %s (%d)", call, vk_result_name(r), (int)r);
}

const char *vk_device_type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

/* Preference: discrete GPU, integrated, virtual, CPU (lavapipe), other. */
static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static int create_instance(VkInstance *inst)
{
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "mlc-pipe",
                             .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return fail("vkCreateInstance: %s: no Vulkan driver is installed (on Debian, mesa-vulkan-drivers provides "
                    "lavapipe)",
                    vk_result_name(r));
    return vk_check("vkCreateInstance", r);
}

static int enumerate(VkInstance inst, VkPhysicalDevice **out, uint32_t *n)
{
    *n = 0;
    *out = NULL;
    if (vk_check("vkEnumeratePhysicalDevices", vkEnumeratePhysicalDevices(inst, n, NULL))) return -1;
    if (*n == 0) return fail("vkEnumeratePhysicalDevices: the Vulkan loader offers no device");
    *out = xcalloc(*n, sizeof **out);
    VkResult r = vkEnumeratePhysicalDevices(inst, n, *out);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(*out);
        return vk_check("vkEnumeratePhysicalDevices", r);
    }
    return 0;
}

/* A compute-capable device running Vulkan 1.1 with subgroup arithmetic in
 * compute shaders (the kernels' reductions). */
static bool usable(VkPhysicalDevice p, uint32_t *family)
{
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(p, &props);
    if (props.apiVersion < VK_API_VERSION_1_1) return false;
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(p, &p2);
    if (!(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
        !(sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
        return false;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(p, &nq, NULL);
    VkQueueFamilyProperties *qf = xcalloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(p, &nq, qf);
    bool ok = false;
    for (uint32_t i = 0; i < nq && !ok; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *family = i;
            ok = true;
        }
    free(qf);
    return ok;
}

static int best_device(VkPhysicalDevice *devs, uint32_t n)
{
    int best = -1, rank = 99;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fam;
        if (!usable(devs[i], &fam)) continue;
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(devs[i], &props);
        if (type_rank(props.deviceType) < rank) {
            rank = type_rank(props.deviceType);
            best = (int)i;
        }
    }
    return best;
}

static uint64_t device_local_bytes(VkPhysicalDevice p)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(p, &mp);
    uint64_t total = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) total += mp.memoryHeaps[i].size;
    return total;
}

int vk_list_devices(struct buf *out)
{
    VkInstance inst;
    if (create_instance(&inst)) return -1;
    VkPhysicalDevice *devs;
    uint32_t n;
    if (enumerate(inst, &devs, &n)) {
        vkDestroyInstance(inst, NULL);
        return -1;
    }
    int best = best_device(devs, n);
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(devs[i], &props);
        uint32_t fam;
        bool ok = usable(devs[i], &fam);
        buf_printf(out, "vulkan:%u\t%s (%s, Vulkan %u.%u.%u, %.1f GiB)%s%s\n", i, props.deviceName,
                   vk_device_type_name(props.deviceType), VK_API_VERSION_MAJOR(props.apiVersion),
                   VK_API_VERSION_MINOR(props.apiVersion), VK_API_VERSION_PATCH(props.apiVersion),
                   (double)device_local_bytes(devs[i]) / (1 << 30), (int)i == best ? ", the default" : "",
                   ok ? "" : ", not usable: needs Vulkan 1.1 with subgroup arithmetic in compute");
    }
    free(devs);
    vkDestroyInstance(inst, NULL);
    return 0;
}

static uint64_t env_u64(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *end ? 0 : v;
}

int vk_device_open(struct vk_device *d, int index)
{
    memset(d, 0, sizeof *d);
    if (create_instance(&d->instance)) return -1;
    VkPhysicalDevice *devs;
    uint32_t n;
    if (enumerate(d->instance, &devs, &n)) goto fail;
    if (index < 0) {
        index = best_device(devs, n);
        if (index < 0) {
            free(devs);
            fail("no Vulkan device runs Vulkan 1.1 with subgroup arithmetic in compute shaders");
            goto fail;
        }
    } else if ((uint32_t)index >= n) {
        free(devs);
        fail("vulkan:%d: the loader offers %u device%s (see mlc-check --list-devices)", index, n, n == 1 ? "" : "s");
        goto fail;
    } else if (!usable(devs[index], &d->queue_family)) {
        free(devs);
        fail("vulkan:%d: the device lacks Vulkan 1.1 with subgroup arithmetic in compute shaders", index);
        goto fail;
    }
    d->phys = devs[index];
    d->index = index;
    free(devs);
    usable(d->phys, &d->queue_family);
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                 .pNext = &sg};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(d->phys, &p2);
    d->props = p2.properties;
    d->subgroup_size = sg.subgroupSize;
    d->max_allocation = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (1ull << 30);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->mem);
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, NULL);
    VkQueueFamilyProperties *qf = xcalloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, qf);
    d->timestamps = qf[d->queue_family].timestampValidBits > 0 && d->props.limits.timestampPeriod > 0;
    free(qf);

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = d->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    /* robust buffer access: a launch whose offsets point past its bindings
     * (a damaged or hostile plan) reads zeros and writes nothing, instead
     * of touching other memory */
    VkPhysicalDeviceFeatures have;
    vkGetPhysicalDeviceFeatures(d->phys, &have);
    VkPhysicalDeviceFeatures want = {.robustBufferAccess = have.robustBufferAccess};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci, .pEnabledFeatures = &want};
    if (vk_check("vkCreateDevice", vkCreateDevice(d->phys, &dci, NULL, &d->dev))) goto fail;
    vkGetDeviceQueue(d->dev, d->queue_family, 0, &d->queue);
    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT |
                                            VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                   .queueFamilyIndex = d->queue_family};
    if (vk_check("vkCreateCommandPool", vkCreateCommandPool(d->dev, &cpi, NULL, &d->pool))) goto fail;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (vk_check("vkCreateFence", vkCreateFence(d->dev, &fci, NULL, &d->fence))) goto fail;
    d->weight_limit = env_u64("MLC_VK_WEIGHT_BINDING_LIMIT");
    d->force_staging = env_u64("MLC_VK_STAGING") == 1;
    return 0;
fail:
    vk_device_close(d);
    return -1;
}

void vk_device_close(struct vk_device *d)
{
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        if (d->fence) vkDestroyFence(d->dev, d->fence, NULL);
        if (d->pool) vkDestroyCommandPool(d->dev, d->pool, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    if (d->instance) vkDestroyInstance(d->instance, NULL);
    memset(d, 0, sizeof *d);
}

static int memory_type(const struct vk_device *d, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer)
{
    int any = -1;
    for (uint32_t i = 0; i < d->mem.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = d->mem.memoryTypes[i].propertyFlags;
        if (!(bits & (1u << i)) || (f & want) != want) continue;
        if ((f & prefer) == prefer) return (int)i;
        if (any < 0) any = (int)i;
    }
    return any;
}

int vk_buffer_create(struct vk_device *d, VkDeviceSize size, bool host, struct vk_buffer *b, const char *what)
{
    memset(b, 0, sizeof *b);
    if (size == 0) size = 16;
    if (size > d->max_allocation)
        return fail("%s: %llu bytes exceed the device's largest allocation (%llu bytes)", what,
                    (unsigned long long)size, (unsigned long long)d->max_allocation);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (vk_check("vkCreateBuffer", vkCreateBuffer(d->dev, &bi, NULL, &b->buf))) return fail_prefix("%s", what);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->dev, b->buf, &req);
    VkMemoryPropertyFlags want = host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    VkMemoryPropertyFlags prefer = host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                              VK_MEMORY_PROPERTY_HOST_CACHED_BIT
                                        : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    int type = memory_type(d, req.memoryTypeBits, want, prefer);
    if (type < 0 && !host) type = memory_type(d, req.memoryTypeBits, 0, 0);
    if (type < 0) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        b->buf = VK_NULL_HANDLE;
        return fail("%s: no memory type suits a %s buffer", what, host ? "host-visible" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    VkResult r = vkAllocateMemory(d->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(d->dev, b->buf, NULL);
        b->buf = VK_NULL_HANDLE;
        b->mem = VK_NULL_HANDLE;
        vk_check("vkAllocateMemory", r);
        return fail_prefix("%s (%llu bytes)", what, (unsigned long long)size);
    }
    b->size = size;
    if (vk_check("vkBindBufferMemory", vkBindBufferMemory(d->dev, b->buf, b->mem, 0))) goto fail;
    VkMemoryPropertyFlags flags = d->mem.memoryTypes[type].propertyFlags;
    if ((flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (host || !d->force_staging)) {
        if (vk_check("vkMapMemory", vkMapMemory(d->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map))) goto fail;
        b->coherent = flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    }
    return 0;
fail:
    fail_prefix("%s", what);
    vk_buffer_destroy(d, b);
    return -1;
}

void vk_buffer_destroy(struct vk_device *d, struct vk_buffer *b)
{
    if (b->map) vkUnmapMemory(d->dev, b->mem);
    if (b->buf) vkDestroyBuffer(d->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(d->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

int vk_buffer_flush(struct vk_device *d, struct vk_buffer *b)
{
    if (!b->map || b->coherent) return 0;
    VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE};
    return vk_check("vkFlushMappedMemoryRanges", vkFlushMappedMemoryRanges(d->dev, 1, &r));
}

uint64_t vk_binding_limit(const struct vk_device *d, uint32_t texel_bytes)
{
    return texel_bytes ? (uint64_t)d->props.limits.maxTexelBufferElements * texel_bytes
                       : d->props.limits.maxStorageBufferRange;
}

uint64_t vk_weight_binding_limit(const struct vk_device *d, uint32_t texel_bytes)
{
    uint64_t lim = vk_binding_limit(d, texel_bytes);
    return d->weight_limit && d->weight_limit < lim ? d->weight_limit : lim;
}

uint64_t vk_offset_alignment(const struct vk_device *d)
{
    uint64_t a = d->props.limits.minTexelBufferOffsetAlignment, s = d->props.limits.minStorageBufferOffsetAlignment;
    uint64_t r = a > s ? a : s;
    return r < 16 ? 16 : r;
}

int vk_begin(struct vk_device *d, VkCommandBuffer *cb)
{
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = d->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if (vk_check("vkAllocateCommandBuffers", vkAllocateCommandBuffers(d->dev, &ai, cb))) return -1;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (vk_check("vkBeginCommandBuffer", vkBeginCommandBuffer(*cb, &bi))) {
        vkFreeCommandBuffers(d->dev, d->pool, 1, cb);
        return -1;
    }
    return 0;
}

int vk_submit_wait(struct vk_device *d, VkCommandBuffer cb)
{
    int rc = vk_check("vkEndCommandBuffer", vkEndCommandBuffer(cb));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    if (rc == 0) rc = vk_check("vkQueueSubmit", vkQueueSubmit(d->queue, 1, &si, d->fence));
    if (rc == 0) rc = vk_check("vkWaitForFences", vkWaitForFences(d->dev, 1, &d->fence, VK_TRUE, UINT64_MAX));
    if (rc == 0) rc = vk_check("vkResetFences", vkResetFences(d->dev, 1, &d->fence));
    vkFreeCommandBuffers(d->dev, d->pool, 1, &cb);
    return rc;
}
