#version 450
// Attention of each row's query heads over its sequence's keys and values
// in the KV cache: decode (one row per sequence) and prefill (rows of one
// sequence, each seeing the positions up to its own: causal). A position is
// visible when it is within the sliding window before the row's position,
// or one of the first SINK positions (attention sinks). Two layouts:
//   - invocations over positions (decode: a row per sequence): a workgroup
//     takes HPW heads of RPW rows one after the other (few workgroups:
//     lavapipe pays for each); positions go in chunks of CHUNK with a
//     running softmax, so any context length fits in shared memory;
//   - LANE_ROWS (prefill: rows of one sequence): each invocation one row of
//     one head, with its own running softmax in registers, all invocations
//     reading the same keys and values (no shared memory, no barriers).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint D = 64;       // head_dim
layout(constant_id = 2) const uint HQ = 1;
layout(constant_id = 3) const uint HKV = 1;
layout(constant_id = 4) const uint CAP = 1;      // cache slots per sequence
layout(constant_id = 5) const uint WINDOW = 0;   // sliding window, 0: none
layout(constant_id = 6) const uint SINK = 0;     // attention sink tokens (with a window)
layout(constant_id = 7) const uint DVEC = 1;     // heads read 4 floats a texel (D % 4 == 0)
layout(constant_id = 8) const uint HPW = 1;      // heads a workgroup (divides HQ)
layout(constant_id = 9) const uint RPW = 1;      // rows a workgroup
layout(constant_id = 10) const uint LANE_ROWS = 0;

layout(binding = 0) uniform samplerBuffer qkv;
layout(binding = 1) uniform usamplerBuffer step; // [seq_at + row], [pos_at + row]
layout(binding = 2) uniform samplerBuffer kv;    // the layer: [seq][key, value][slot][HKV * D]
layout(std430, binding = 3) writeonly buffer Out { float o[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint qkv_base;
    uint out_base;
    uint seq_at;
    uint pos_at;
    uint kv_base;
} p;

const uint CHUNK = 1024u;
const uint E = DVEC != 0u ? 4u : 1u;             // floats a texel
const uint DV = D / E;                           // texels a head
const uint NSUB = WG / DV > 0u ? WG / DV : 1u;              // position subsets summed in parallel
const uint KVD = HKV * D;
const uint MAXDV = 64u;

shared float score[CHUNK];
shared float red[64];
shared vec4 part[256];

float wg_max(float v)
{
    v = subgroupMax(v);
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    float r = red[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) r = max(r, red[i]);
    barrier();
    return r;
}

float wg_sum(float v)
{
    v = subgroupAdd(v);
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) r += red[i];
    barrier();
    return r;
}

vec4 fetch(samplerBuffer b, uint base, uint at)
{
    vec4 v = texelFetch(b, int(base + at));
    return DVEC != 0u ? v : vec4(v.x, 0.0, 0.0, 0.0);
}

uint slot_of(uint pos)
{
    if (WINDOW == 0u || pos < SINK) return pos;
    return SINK + (pos - SINK) % (CAP - SINK);
}

void attend(uint h, uint row)
{
    uint lane = gl_LocalInvocationID.x;
    uint seq = texelFetch(step, int(p.seq_at + row)).x, pos = texelFetch(step, int(p.pos_at + row)).x;
    uint g = h / (HQ / HKV);
    uint lo = WINDOW != 0u && pos + 1u > WINDOW ? pos + 1u - WINDOW : 0u;
    uint sinks = min(SINK, lo);
    uint n = sinks + (pos - lo + 1u);
    float scale = 1.0 / sqrt(float(D));
    // texel offsets (in the view's elements)
    uint q_at = (row * (HQ + 2u * HKV) * D + h * D) / E;
    uint k_at = ((seq * 2u) * CAP * KVD + g * D) / E;
    uint v_at = ((seq * 2u + 1u) * CAP * KVD + g * D) / E;
    vec4 q[MAXDV];
    for (uint c = 0u; c < DV; c++) q[c] = fetch(qkv, p.qkv_base, q_at + c);

    uint ch = lane % DV, sub = lane / DV;
    bool summing = sub < NSUB;
    vec4 acc = vec4(0.0);
    float m_run = -1.0 / 0.0, l_run = 0.0;
    for (uint c0 = 0u; c0 < n; c0 += CHUNK) {
        uint cn = min(CHUNK, n - c0);
        float m = -1.0 / 0.0;
        for (uint i = lane; i < cn; i += WG) {
            uint at = c0 + i, position = at < sinks ? at : lo + (at - sinks);
            uint k = k_at + slot_of(position) * (KVD / E);
            float d = 0.0;
            for (uint c = 0u; c < DV; c++) d += dot(q[c], fetch(kv, p.kv_base, k + c));
            d *= scale;
            score[i] = d;
            m = max(m, d);
        }
        float m_new = max(m_run, wg_max(m));
        float l = 0.0;
        for (uint i = lane; i < cn; i += WG) {
            float e = exp(score[i] - m_new);
            score[i] = e;
            l += e;
        }
        l = wg_sum(l);
        float alpha = exp(m_run - m_new);
        l_run = l_run * alpha + l;
        acc *= alpha;
        m_run = m_new;
        if (summing)
            for (uint i = sub; i < cn; i += NSUB) {
                uint at = c0 + i, position = at < sinks ? at : lo + (at - sinks);
                acc += score[i] * fetch(kv, p.kv_base, v_at + slot_of(position) * (KVD / E) + ch);
            }
        barrier();
    }
    part[lane] = acc;
    barrier();
    if (summing && sub == 0u) {
        vec4 total = vec4(0.0);
        for (uint s = 0u; s < NSUB; s++) total += part[s * DV + ch];
        total /= l_run;
        uint out0 = p.out_base + row * HQ * D + h * D + ch * E;
        for (uint j = 0u; j < E; j++) o[out0 + j] = total[j];
    }
    barrier();  /* part[] is read above before the next head writes it */
}

/* LANE_ROWS: rows gl_WorkGroupID.y * WG + lane of head gl_WorkGroupID.x,
 * all of one sequence (a prefill chunk). */
void attend_rows()
{
    uint h = gl_WorkGroupID.x, lane = gl_LocalInvocationID.x;
    uint first = gl_WorkGroupID.y * WG, last = min(first + WG, p.rows) - 1u;
    uint row = min(first + lane, last);
    uint seq = texelFetch(step, int(p.seq_at + row)).x, pos = texelFetch(step, int(p.pos_at + row)).x;
    uint pos_first = texelFetch(step, int(p.pos_at + first)).x, pos_last = texelFetch(step, int(p.pos_at + last)).x;
    uint g = h / (HQ / HKV);
    uint lo = WINDOW != 0u && pos + 1u > WINDOW ? pos + 1u - WINDOW : 0u;
    uint lo_first = WINDOW != 0u && pos_first + 1u > WINDOW ? pos_first + 1u - WINDOW : 0u;
    uint sinks = min(SINK, lo);
    float scale = 1.0 / sqrt(float(D));
    uint q_at = (row * (HQ + 2u * HKV) * D + h * D) / E;
    uint k_at = ((seq * 2u) * CAP * KVD + g * D) / E;
    uint v_at = ((seq * 2u + 1u) * CAP * KVD + g * D) / E;
    vec4 q[MAXDV], acc[MAXDV];
    for (uint c = 0u; c < DV; c++) {
        q[c] = fetch(qkv, p.qkv_base, q_at + c) * scale;
        acc[c] = vec4(0.0);
    }
    float m = -1.0 / 0.0, l = 0.0;
    /* the positions any row of the block sees: the sinks, then from the
     * first row's window start to the last row's position */
    uint sink_end = min(SINK, lo_first);
    for (uint at = 0u; at <= pos_last; at++) {
        if (at >= sink_end && at < lo_first) {
            at = lo_first - 1u;
            continue;
        }
        if (at > pos || (at >= sinks && at < lo)) continue;
        uint slot = slot_of(at);
        float d = 0.0;
        for (uint c = 0u; c < DV; c++) d += dot(q[c], fetch(kv, p.kv_base, k_at + slot * (KVD / E) + c));
        if (d > m) {
            float a = exp(m - d);
            l *= a;
            for (uint c = 0u; c < DV; c++) acc[c] *= a;
            m = d;
        }
        float e = exp(d - m);
        l += e;
        for (uint c = 0u; c < DV; c++) acc[c] += e * fetch(kv, p.kv_base, v_at + slot * (KVD / E) + c);
    }
    if (first + lane > last) return;
    uint out0 = p.out_base + row * HQ * D + h * D;
    for (uint c = 0u; c < DV; c++)
        for (uint j = 0u; j < E; j++) o[out0 + c * E + j] = acc[c][j] / l;
}

void main()
{
    if (LANE_ROWS != 0u) {
        attend_rows();
        return;
    }
    for (uint r = 0u; r < RPW; r++) {
        uint row = gl_WorkGroupID.y * RPW + r;
        if (row >= p.rows) break;
        for (uint hh = 0u; hh < HPW; hh++) attend(gl_WorkGroupID.x * HPW + hh, row);
    }
}
