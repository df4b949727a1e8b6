#version 450
// Matrix multiplication y = x · Wᵀ (+ bias), for every way a scheme stores
// W (weights.glsl): the decode GEMV (T = 1) and the prefill GEMM (T tokens
// at a time reuse each decoded weight). Optional epilogue: SiLU or GELU
// (tanh) gating, y[n] = act(x·G[n]) * (x·U[n]) for the fused gate/up
// projection, whose halves G and U (the weight's rows n and n + p.n) come
// as bindings of their own (w, s and w2, s2), so that each can be bound in
// slices.
//
// Layout chosen for lavapipe (llvmpipe runs 8 invocations in one SIMD
// register): each invocation owns R output columns, so loads of x are the
// same for all lanes and each lane streams its own weight rows; the
// quantized codes are multiplied in place (masked, never shifted) against
// x pre-divided by the code's power of two, and the zero point is taken
// out once per group through the sum of x. That skips rounding each weight
// to float16 as float16 schemes' arithmetic does (MLC's dequantize, and the
// CPU reference): the EXACT variant dequantizes weight by weight instead,
// to agree with the CPU to float32 rounding.
//
// FP8 weights (WFMT 3) multiply FP8 activations, as MLC's FP8 matmul does
// and the CPU kernels do: each input becomes fp8(x / a) with the
// activation scale a (calibration measured it), the products of the FP8
// values are summed in float32, and the sum is multiplied by a times the
// weights' scale. e5m2 has no scales: the inputs are rounded as they are.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint R = 1;        // output columns per invocation
layout(constant_id = 2) const uint T = 1;        // tokens per pass (1 to 4)
layout(constant_id = 3) const uint K = 32;       // input columns
layout(constant_id = 5) const uint EPILOGUE = 0; // gating over weight rows n and n + N: 1 SiLU, 2 GELU (tanh)
layout(constant_id = 6) const uint BIAS = 0;     // 0: none, else 1 + the bias dtype
layout(constant_id = 7) const uint XVEC = 1;     // x read 4 floats a texel (K % 4 == 0)
layout(constant_id = 8) const uint EXACT = 0;    // dequantize each weight as the scheme's arithmetic does

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform usamplerBuffer w;
layout(binding = 2) uniform usamplerBuffer s;
layout(binding = 3) uniform usamplerBuffer bias;
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(binding = 5) uniform usamplerBuffer w2;
layout(binding = 6) uniform usamplerBuffer s2;
layout(binding = 7) uniform usamplerBuffer ascale;   // FP8: the activation scale

layout(push_constant) uniform Push {
    uint rows;          // tokens
    uint x_base;        // element offsets in the views
    uint y_base;
    uint bias_base;
    uint w_base;
    uint s_base;
    uint slice_start;   // first output column of the bound weight rows, and how many
    uint slice_rows;
    uint w2_base;       // EPILOGUE: the up half's offsets
    uint s2_base;
    uint n;             // output columns (a push constant, not a specialization:
                        // weights of one input width share a kernel)
    uint a_base;        // FP8: the activation scale's offset
} p;

#include "weights.glsl"

const uint BLK = WFMT == 3u ? (WVEC != 0u ? 16u : 4u) : WFMT != 0u ? GS : (WVEC != 0u ? 4u : 1u);  // columns a block
const uint NB = (K + BLK - 1u) / BLK;
const uint WR = EPILOGUE != 0u ? 2u * R : R;                // weight rows a lane reads
const uint MAXT = 4u;
const uint MAXB = 40u;

float xb[MAXT][MAXB];   // the block of x for each token of the pass
float xsum[MAXT];
float act_scale = 1.0;  // FP8_SCALED: the inputs are divided by it

void load_x(uint t0, uint blk)
{
    [[unroll]] for (uint t = 0u; t < T; t++) {
        uint tok = min(t0 + t, p.rows - 1u);
        uint c0 = blk * BLK;
        if (XVEC != 0u) {
            [[unroll]] for (uint j = 0u; j < BLK; j += 4u) {
                vec4 v = texelFetch(x, int(p.x_base + (tok * K + c0 + j) / 4u));
                xb[t][j] = v.x;
                xb[t][j + 1u] = v.y;
                xb[t][j + 2u] = v.z;
                xb[t][j + 3u] = v.w;
            }
        } else {
            [[unroll]] for (uint j = 0u; j < BLK; j++) xb[t][j] = texelFetch(x, int(p.x_base + tok * K + c0 + j)).x;
        }
        if (K % BLK != 0u && blk == NB - 1u)
            [[unroll]] for (uint j = 0u; j < BLK; j++)
                if (c0 + j >= K) xb[t][j] = 0.0;
        if (WFMT == 3u) {
            [[unroll]] for (uint j = 0u; j < BLK; j++)
                xb[t][j] = round_fp8(FP8_SCALED != 0u ? xb[t][j] / act_scale : xb[t][j], WDT);
        } else if (WFMT != 0u && EXACT == 0u) {
            float sum = 0.0;
            [[unroll]] for (uint j = 0u; j < BLK; j++) {
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
    float out_scale = 1.0;   // FP8: what each sum is multiplied by
    if (WFMT == 3u && FP8_SCALED != 0u) {
        act_scale = uintBitsToFloat(texelFetch(ascale, int(p.a_base)).x);
        out_scale = act_scale * uintBitsToFloat(texelFetch(s, int(p.s_base)).x);
    }
    for (uint t0 = 0u; t0 < p.rows; t0 += T) {
        float acc[2u * 8u][MAXT];
        [[unroll]] for (uint r = 0u; r < WR; r++)
            [[unroll]] for (uint t = 0u; t < T; t++) acc[r][t] = 0.0;
        for (uint blk = 0u; blk < NB; blk++) {
            load_x(t0, blk);
            [[unroll]] for (uint r = 0u; r < WR; r++) {
                uint n = first + (r % R) * WG;
                if (n >= end) continue;
                uint row = n - p.slice_start;
                bool up = r >= R;
                if (WFMT == 3u) {
                    [[unroll]] for (uint i = 0u; i < BLK / 4u; i++) {
                        uint word = up ? fp8_word(w2, p.w2_base, row, blk, i, K) : fp8_word(w, p.w_base, row, blk, i, K);
                        [[unroll]] for (uint e = 0u; e < 4u; e++) {
                            float wv = decode_fp8((word >> (8u * e)) & 255u, WDT);
                            [[unroll]] for (uint t = 0u; t < T; t++) acc[r][t] += wv * xb[t][i * 4u + e];
                        }
                    }
                } else if (WFMT != 0u) {
                    uvec4 q = up ? group_words(w2, p.w2_base, row, blk, ngroups) : group_words(w, p.w_base, row, blk, ngroups);
                    float sc = up ? group_scale(s2, p.s2_base, row, blk, ngroups) : group_scale(s, p.s_base, row, blk, ngroups);
                    if (EXACT != 0u) {
                        [[unroll]] for (uint i = 0u; i < WPG; i++)
                            [[unroll]] for (uint e = 0u; e < EPW; e++) {
                                float wv = dequant(q[i], e, sc);
                                [[unroll]] for (uint t = 0u; t < T; t++) acc[r][t] += wv * xb[t][i * EPW + e];
                            }
                    } else {
                        [[unroll]] for (uint t = 0u; t < T; t++) {
                            float d = 0.0;
                            [[unroll]] for (uint i = 0u; i < WPG; i++)
                                [[unroll]] for (uint e = 0u; e < EPW; e++) d += code_in_place(q[i], e) * xb[t][i * EPW + e];
                            acc[r][t] += sc * (d - float(MAXI) * xsum[t]);
                        }
                    }
                } else if (BLK == 4u) {
                    vec4 wv = up ? plain4(w2, p.w2_base, row, blk, K) : plain4(w, p.w_base, row, blk, K);
                    [[unroll]] for (uint t = 0u; t < T; t++)
                        acc[r][t] += dot(wv, vec4(xb[t][0], xb[t][1], xb[t][2], xb[t][3]));
                } else {
                    float wv = up ? plain1(w2, p.w2_base, row, blk, K) : plain1(w, p.w_base, row, blk, K);
                    [[unroll]] for (uint t = 0u; t < T; t++) acc[r][t] += wv * xb[t][0];
                }
            }
        }
        [[unroll]] for (uint r = 0u; r < R; r++) {
            uint n = first + r * WG;
            if (n >= end) continue;
            [[unroll]] for (uint t = 0u; t < T; t++) {
                if (t0 + t >= p.rows) continue;
                float v = acc[r][t] * out_scale;
                if (BIAS != 0u) v += decode_bits(texelFetch(bias, int(p.bias_base + n)).x, BIAS - 1u);
                if (EPILOGUE != 0u) {
                    float up = acc[r + R][t] * out_scale;
                    if (BIAS != 0u) up += decode_bits(texelFetch(bias, int(p.bias_base + n + p.n)).x, BIAS - 1u);
                    v = gate_act(v, EPILOGUE - 1u) * up;
                }
                y[p.y_base + (t0 + t) * p.n + n] = v;
            }
        }
    }
}
