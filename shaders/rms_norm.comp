#version 450
// RMS norm of each row, y = x / sqrt(mean(x²) + eps) · w, optionally of the
// sum of two rows (the residual add fused in: the sum is written too).
// One workgroup per row.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint H = 64;       // row length
layout(constant_id = 2) const float EPS = 1e-5;
layout(constant_id = 3) const uint ADD = 0;      // 1: normalize a + b, and write a + b
layout(constant_id = 4) const uint WDT = 0;      // norm weight dtype

layout(binding = 0) uniform samplerBuffer a;
layout(binding = 1) uniform samplerBuffer b;
layout(binding = 2) uniform usamplerBuffer nw;
layout(std430, binding = 3) writeonly buffer Sum { float sum[]; };
layout(std430, binding = 4) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint a_base;
    uint b_base;
    uint sum_base;
    uint y_base;
} p;

shared float partial[64];

float row_value(uint at)
{
    float v = texelFetch(a, int(p.a_base + at)).x;
    if (ADD != 0u) v += texelFetch(b, int(p.b_base + at)).x;
    return v;
}

void main()
{
    uint row = gl_WorkGroupID.x, lane = gl_LocalInvocationID.x;
    float ss = 0.0;
    for (uint i = lane; i < H; i += WG) {
        float v = row_value(row * H + i);
        ss += v * v;
    }
    ss = subgroupAdd(ss);
    if (subgroupElect()) partial[gl_SubgroupID] = ss;
    barrier();
    float total = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) total += partial[i];
    float scale = inversesqrt(total / float(H) + EPS);
    for (uint i = lane; i < H; i += WG) {
        float v = row_value(row * H + i);
        if (ADD != 0u) sum[p.sum_base + row * H + i] = v;
        y[p.y_base + row * H + i] = v * scale * decode_bits(texelFetch(nw, int(i)).x, WDT);
    }
}
