#version 450
// Per-head RMS norm of the query and key heads of each row of q/k/v
// (Qwen3's q_norm and k_norm); value heads are copied. One workgroup per
// (head, row).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;       // head_dim
layout(constant_id = 2) const float EPS = 1e-6;
layout(constant_id = 3) const uint HQ = 1;
layout(constant_id = 4) const uint HKV = 1;
layout(constant_id = 5) const uint WDT = 0;

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform usamplerBuffer qn;
layout(binding = 2) uniform usamplerBuffer kn;
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint x_base;
    uint y_base;
} p;

shared float partial[64];

void main()
{
    uint head = gl_WorkGroupID.x, row = gl_WorkGroupID.y, lane = gl_LocalInvocationID.x;
    uint at = row * (HQ + 2u * HKV) * D + head * D;
    if (head >= HQ + HKV) {
        for (uint i = lane; i < D; i += WG) y[p.y_base + at + i] = texelFetch(x, int(p.x_base + at + i)).x;
        return;
    }
    float ss = 0.0;
    for (uint i = lane; i < D; i += WG) {
        float v = texelFetch(x, int(p.x_base + at + i)).x;
        ss += v * v;
    }
    ss = subgroupAdd(ss);
    if (subgroupElect()) partial[gl_SubgroupID] = ss;
    barrier();
    float total = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) total += partial[i];
    float scale = inversesqrt(total / float(D) + EPS);
    for (uint i = lane; i < D; i += WG) {
        float v = texelFetch(x, int(p.x_base + at + i)).x;
        uint wbits = head < HQ ? texelFetch(qn, int(i)).x : texelFetch(kn, int(i)).x;
        y[p.y_base + at + i] = v * scale * decode_bits(wbits, WDT);
    }
}
