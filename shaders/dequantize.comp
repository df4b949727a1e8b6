#version 450
// A whole weight matrix as float32 [rows, K] (the unfused plan's
// dequantize op; fused plans read the stored weight in matmul instead).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const uint K = 32;

layout(binding = 1) uniform usamplerBuffer w;
layout(binding = 2) uniform usamplerBuffer s;
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint y_base;
    uint w_base;
    uint s_base;
    uint slice_start;
    uint slice_rows;
} p;

#include "weights.glsl"

const uint BLK = WFMT != 0u ? GS : (WVEC != 0u ? 4u : 1u);
const uint NB = (K + BLK - 1u) / BLK;

void main()
{
    uint blk = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (blk >= NB || row >= p.slice_rows) return;
    uint out0 = p.y_base + (p.slice_start + row) * K + blk * BLK;
    if (WFMT != 0u) {
        uint ngroups = groups_of(K);
        uvec4 q = group_words(w, p.w_base, row, blk, ngroups);
        float sc = group_scale(s, p.s_base, row, blk, ngroups);
        [[unroll]] for (uint i = 0u; i < WPG; i++)
            [[unroll]] for (uint e = 0u; e < EPW; e++)
                if (blk * BLK + i * EPW + e < K) y[out0 + i * EPW + e] = dequant(q[i], e, sc);
    } else if (BLK == 4u) {
        vec4 v = plain4(w, p.w_base, row, blk, K);
        [[unroll]] for (uint j = 0u; j < 4u; j++) y[out0 + j] = v[j];
    } else {
        y[out0] = plain1(w, p.w_base, row, blk, K);
    }
}
