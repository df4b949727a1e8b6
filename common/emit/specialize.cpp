// spirv_specialize() (specialize.h) over spvtools::Optimizer.
#include "common/emit/specialize.h"

#include <spirv-tools/optimizer.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

extern "C" int spirv_specialize(const uint32_t *in, size_t n, const struct spec_value *v, int nv, bool optimize,
                                uint32_t **out, size_t *nout, char *err, size_t errlen)
{
    if (errlen) err[0] = 0;
    try {
        spvtools::Optimizer opt(SPV_ENV_VULKAN_1_1);
        opt.SetMessageConsumer([err, errlen](spv_message_level_t level, const char *, const spv_position_t &,
                                             const char *message) {
            if (level <= SPV_MSG_ERROR && errlen && !err[0]) std::snprintf(err, errlen, "%s", message);
        });
        // values as bit patterns (32-bit constants: one word each)
        std::unordered_map<uint32_t, std::vector<uint32_t>> values;
        for (int i = 0; i < nv; i++) values[v[i].id] = {v[i].bits};
        opt.RegisterPass(spvtools::CreateSetSpecConstantDefaultValuePass(values));
        opt.RegisterPass(spvtools::CreateFreezeSpecConstantValuePass());
        if (optimize) opt.RegisterPerformancePasses();
        spvtools::OptimizerOptions options;
        options.set_run_validator(false); // the caller validates the result
        std::vector<uint32_t> result;
        if (!opt.Run(in, n, &result, options)) {
            if (errlen && !err[0]) std::snprintf(err, errlen, "the optimizer failed");
            return -1;
        }
        uint32_t *words = static_cast<uint32_t *>(std::malloc(sizeof(uint32_t) * (result.size() + 1)));
        if (!words) throw std::bad_alloc();
        std::memcpy(words, result.data(), sizeof(uint32_t) * result.size());
        *out = words;
        *nout = result.size();
        return 0;
    } catch (const std::bad_alloc &) {
        if (errlen) std::snprintf(err, errlen, "out of memory");
        return -1;
    }
}
