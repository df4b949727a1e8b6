#version 450
// Rotary position embedding of the query and key heads of each row of
// q/k/v (rotate-half pairs (i, i + D/2)); value heads are copied. The
// engine computes cos and sin of every (row, i) angle on the host, in
// double precision as the CPU kernels do, into the step data. With APPEND,
// the rotated keys and the values also go to their slots of the layer's KV
// cache (kv_append fused in: one dispatch instead of two).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;
layout(constant_id = 2) const uint HQ = 1;
layout(constant_id = 3) const uint HKV = 1;
layout(constant_id = 4) const uint APPEND = 0;
layout(constant_id = 5) const uint CAP = 1;      // APPEND: cache slots per sequence

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform samplerBuffer cs;    // step data as float: [row][i][cos, sin]
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(binding = 3) uniform usamplerBuffer step;  // APPEND: [seq_at + row], [slot_at + row]
layout(std430, binding = 4) writeonly buffer KV { float kv[]; };  // APPEND: [seq][key, value][slot][HKV * D]

layout(push_constant) uniform Push {
    uint rows;
    uint x_base;
    uint y_base;
    uint cs_at;
    uint seq_at;
    uint slot_at;
    uint kv_dtype;      // APPEND: the cache keeps keys and values rounded to this dtype
} p;

const uint HALF = D / 2u;
const uint HEADS = HQ + 2u * HKV;
const uint KVD = HKV * D;

void append(uint row, uint head, uint i, float a, float b)
{
    if (APPEND == 0u || head < HQ) return;
    uint seq = texelFetch(step, int(p.seq_at + row)).x, slot = texelFetch(step, int(p.slot_at + row)).x;
    uint value = head >= HQ + HKV ? 1u : 0u, kvh = head - HQ - value * HKV;
    uint at = ((seq * 2u + value) * CAP + slot) * KVD + kvh * D + i;
    kv[at] = round_to(a, p.kv_dtype);
    kv[at + HALF] = round_to(b, p.kv_dtype);
}

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
        float r1 = x1 * c - x2 * s, r2 = x2 * c + x1 * s;
        y[p.y_base + at] = r1;
        y[p.y_base + at + HALF] = r2;
        append(row, head, i, r1, r2);
    } else {
        y[p.y_base + at] = x1;
        y[p.y_base + at + HALF] = x2;
        append(row, head, i, x1, x2);
    }
}
