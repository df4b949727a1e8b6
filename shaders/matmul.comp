#version 450
// Matrix multiplication y = x · Wᵀ (+ bias), for every way a scheme stores
// W (weights.glsl): the decode GEMV (T = 1) and the prefill GEMM (T tokens
// at a time reuse each decoded weight). Optional epilogue: SiLU gating,
// y[n] = silu(x·W[n]) * (x·W[n + N]) for the fused gate/up projection.
//
// Layout chosen for lavapipe (llvmpipe runs 8 invocations in one SIMD
// register): each invocation owns R output columns, so loads of x are the
// same for all lanes and each lane streams its own weight rows; the
// quantized codes are multiplied in place (masked, never shifted) against
// x pre-divided by the code's power of two, and the zero point is taken
// out once per group through the sum of x.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint R = 1;        // output columns per invocation
layout(constant_id = 2) const uint T = 1;        // tokens per pass (1 to 4)
layout(constant_id = 3) const uint K = 32;       // input columns
layout(constant_id = 4) const uint N = 32;       // output columns
layout(constant_id = 5) const uint EPILOGUE = 0; // 1: SiLU gating over weight rows n and n + N
layout(constant_id = 6) const uint BIAS = 0;     // 0: none, else 1 + the bias dtype
layout(constant_id = 7) const uint XVEC = 1;     // x read 4 floats a texel (K % 4 == 0)

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform usamplerBuffer w;
layout(binding = 2) uniform usamplerBuffer s;
layout(binding = 3) uniform usamplerBuffer bias;
layout(std430, binding = 4) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;          // tokens
    uint x_base;        // element offsets in the views
    uint y_base;
    uint bias_base;
    uint w_base;
    uint s_base;
    uint slice_start;   // first weight row bound, and how many
    uint slice_rows;
} p;

#include "weights.glsl"

const uint BLK = WFMT != 0u ? GS : (WVEC != 0u ? 4u : 1u);  // columns a block
const uint NB = (K + BLK - 1u) / BLK;
const uint WR = EPILOGUE != 0u ? 2u * R : R;                // weight rows a lane reads
const uint MAXT = 4u;
const uint MAXB = 40u;

float xb[MAXT][MAXB];   // the block of x for each token of the pass
float xsum[MAXT];

void load_x(uint t0, uint blk)
{
    for (uint t = 0u; t < T; t++) {
        uint tok = min(t0 + t, p.rows - 1u);
        uint c0 = blk * BLK;
        if (XVEC != 0u) {
            for (uint j = 0u; j < BLK; j += 4u) {
                vec4 v = texelFetch(x, int(p.x_base + (tok * K + c0 + j) / 4u));
                xb[t][j] = v.x;
                xb[t][j + 1u] = v.y;
                xb[t][j + 2u] = v.z;
                xb[t][j + 3u] = v.w;
            }
        } else {
            for (uint j = 0u; j < BLK; j++) xb[t][j] = texelFetch(x, int(p.x_base + tok * K + c0 + j)).x;
        }
        if (K % BLK != 0u && blk == NB - 1u)
            for (uint j = 0u; j < BLK; j++)
                if (c0 + j >= K) xb[t][j] = 0.0;
        if (WFMT != 0u) {
            float sum = 0.0;
            for (uint j = 0u; j < BLK; j++) {
                sum += xb[t][j];
                xb[t][j] *= code_prescale(j % EPW);
            }
            xsum[t] = sum;
        }
    }
}

void main()
{
    uint lane = gl_LocalInvocationID.x;
    uint first = p.slice_start + gl_WorkGroupID.x * WG * R + lane;
    uint end = p.slice_start + p.slice_rows;
    uint ngroups = groups_of(K);
    for (uint t0 = 0u; t0 < p.rows; t0 += T) {
        float acc[2u * 4u][MAXT];
        for (uint r = 0u; r < WR; r++)
            for (uint t = 0u; t < T; t++) acc[r][t] = 0.0;
        for (uint blk = 0u; blk < NB; blk++) {
            load_x(t0, blk);
            for (uint r = 0u; r < WR; r++) {
                uint n = first + (r % R) * WG;
                if (n >= end) continue;
                uint row = n + (r >= R ? N : 0u) - p.slice_start;
                if (WFMT != 0u) {
                    uvec4 q = group_words(row, blk, ngroups);
                    float sc = group_scale(row, blk, ngroups);
                    for (uint t = 0u; t < T; t++) {
                        float d = 0.0;
                        for (uint i = 0u; i < WPG; i++)
                            for (uint e = 0u; e < EPW; e++) d += code_in_place(q[i], e) * xb[t][i * EPW + e];
                        acc[r][t] += sc * (d - float(MAXI) * xsum[t]);
                    }
                } else if (BLK == 4u) {
                    vec4 wv = plain4(row, blk, K);
                    for (uint t = 0u; t < T; t++)
                        acc[r][t] += dot(wv, vec4(xb[t][0], xb[t][1], xb[t][2], xb[t][3]));
                } else {
                    float wv = plain1(row, blk, K);
                    for (uint t = 0u; t < T; t++) acc[r][t] += wv * xb[t][0];
                }
            }
        }
        for (uint r = 0u; r < R; r++) {
            uint n = first + r * WG;
            if (n >= end) continue;
            for (uint t = 0u; t < T; t++) {
                if (t0 + t >= p.rows) continue;
                float v = acc[r][t];
                if (BIAS != 0u) v += decode_bits(texelFetch(bias, int(p.bias_base + n)).x, BIAS - 1u);
                if (EPILOGUE != 0u) {
                    float up = acc[r + R][t];
                    if (BIAS != 0u) up += decode_bits(texelFetch(bias, int(p.bias_base + n + N)).x, BIAS - 1u);
                    v = silu(v) * up;
                }
                y[p.y_base + (t0 + t) * N + n] = v;
            }
        }
    }
}
