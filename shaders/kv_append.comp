#version 450
// Keys and values of each row of q/k/v into its sequence's slots of one
// layer of the KV cache, laid out [sequence][key, value][slot][HKV * D],
// rounded to the dtype the cache keeps (as MLC keeps it in the model's).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;
layout(constant_id = 2) const uint HQ = 1;
layout(constant_id = 3) const uint HKV = 1;
layout(constant_id = 4) const uint CAP = 1;      // slots per sequence

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform usamplerBuffer step;  // [seq_at + row], [slot_at + row]
layout(std430, binding = 2) writeonly buffer KV { float kv[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint x_base;
    uint seq_at;
    uint slot_at;
    uint kv_dtype;      // the cache keeps keys and values rounded to this dtype
} p;

const uint KVD = HKV * D;

void main()
{
    uint j = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (j >= KVD || row >= p.rows) return;
    uint seq = texelFetch(step, int(p.seq_at + row)).x, slot = texelFetch(step, int(p.slot_at + row)).x;
    uint src = p.x_base + row * (HQ + 2u * HKV) * D + HQ * D + j;
    kv[((seq * 2u) * CAP + slot) * KVD + j] = round_to(texelFetch(x, int(src)).x, p.kv_dtype);
    kv[((seq * 2u + 1u) * CAP + slot) * KVD + j] = round_to(texelFetch(x, int(src + KVD)).x, p.kv_dtype);
}
