#version 450
// SiLU gating of each row: y[i] = silu(g[i]) * g[I + i] (the unfused plan).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint I = 64;

layout(binding = 0) uniform samplerBuffer g;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint g_base;
    uint y_base;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (i >= I || row >= p.rows) return;
    float gate = texelFetch(g, int(p.g_base + row * 2u * I + i)).x;
    float up = texelFetch(g, int(p.g_base + row * 2u * I + I + i)).x;
    y[p.y_base + row * I + i] = silu(gate) * up;
}
