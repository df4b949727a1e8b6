#version 450
// Rotary position embedding of the query and key heads of each row of
// q/k/v (rotate-half pairs (i, i + D/2)); value heads are copied. The
// engine computes cos and sin of every (row, i) angle on the host, in
// double precision as the CPU kernels do, into the step data.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;
layout(constant_id = 2) const uint HQ = 1;
layout(constant_id = 3) const uint HKV = 1;

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform samplerBuffer cs;    // step data as float: [row][i][cos, sin]
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint x_base;
    uint y_base;
    uint cs_at;
} p;

const uint HALF = D / 2u;
const uint HEADS = HQ + 2u * HKV;

void main()
{
    uint id = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (id >= HEADS * HALF || row >= p.rows) return;
    uint head = id / HALF, i = id % HALF;
    uint at = row * HEADS * D + head * D + i;
    float x1 = texelFetch(x, int(p.x_base + at)).x, x2 = texelFetch(x, int(p.x_base + at + HALF)).x;
    if (head < HQ + HKV) {
        uint t = p.cs_at + (row * HALF + i) * 2u;
        float c = texelFetch(cs, int(t)).x, s = texelFetch(cs, int(t + 1u)).x;
        y[p.y_base + at] = x1 * c - x2 * s;
        y[p.y_base + at + HALF] = x2 * c + x1 * s;
    } else {
        y[p.y_base + at] = x1;
        y[p.y_base + at + HALF] = x2;
    }
}
