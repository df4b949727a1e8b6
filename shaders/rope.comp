#version 450
// Rotary position embedding of the query and key heads of each row of
// q/k/v: the first ROT dimensions of a head rotate (rotate-half pairs
// (i, i + ROT/2)), the rest (partial rotation: Phi-3) and the value heads
// are copied. The engine computes cos and sin of every (row, i) angle on the
// host, in double precision as the CPU kernels do, into the step data: one
// table per distinct rotation of the model (per-layer bases, scaling), the
// launch's at cs_at. With APPEND, the rotated keys and the values also go to
// their slots of the layer's KV cache (kv_append fused in: one dispatch
// instead of two).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;
layout(constant_id = 2) const uint HQ = 1;
layout(constant_id = 3) const uint HKV = 1;
layout(constant_id = 4) const uint APPEND = 0;
layout(constant_id = 5) const uint CAP = 1;      // APPEND: cache slots per sequence
layout(constant_id = 6) const uint ROT = 0;      // dimensions that rotate (even); 0: all D

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform samplerBuffer cs;    // step data as float: [row][i < D/2][cos, sin]
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
const uint RD = ROT != 0u ? ROT : D;
const uint RHALF = RD / 2u;
const uint HEADS = HQ + 2u * HKV;
const uint KVD = HKV * D;

void append(uint row, uint head, uint e1, uint e2, float a, float b)
{
    if (APPEND == 0u || head < HQ) return;
    uint seq = texelFetch(step, int(p.seq_at + row)).x, slot = texelFetch(step, int(p.slot_at + row)).x;
    uint value = head >= HQ + HKV ? 1u : 0u, kvh = head - HQ - value * HKV;
    uint at = ((seq * 2u + value) * CAP + slot) * KVD + kvh * D;
    kv[at + e1] = round_to(a, p.kv_dtype);
    kv[at + e2] = round_to(b, p.kv_dtype);
}

// Invocation i of a head takes two elements: the rotated pair
// (i, i + RD/2) for i < RD/2, else two of the dimensions past RD.
void main()
{
    uint id = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (id >= HEADS * HALF || row >= p.rows) return;
    uint head = id / HALF, i = id % HALF;
    bool rotates = i < RHALF && head < HQ + HKV;
    uint e1 = i < RHALF ? i : RD + 2u * (i - RHALF);
    uint e2 = i < RHALF ? i + RHALF : e1 + 1u;
    uint at = row * HEADS * D + head * D;
    float x1 = texelFetch(x, int(p.x_base + at + e1)).x, x2 = texelFetch(x, int(p.x_base + at + e2)).x;
    if (rotates) {
        uint t = p.cs_at + (row * HALF + i) * 2u;
        float c = texelFetch(cs, int(t)).x, s = texelFetch(cs, int(t + 1u)).x;
        float r1 = x1 * c - x2 * s, r2 = x2 * c + x1 * s;
        x1 = r1;
        x2 = r2;
    }
    y[p.y_base + at + e1] = x1;
    y[p.y_base + at + e2] = x2;
    append(row, head, e1, e2, x1, x2);
}
