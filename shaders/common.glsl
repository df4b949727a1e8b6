// Shared by every kernel (included, not compiled alone): how stored numbers
// arrive and how they are decoded. Weights and scales are bound through
// unsigned texel views as raw bits (float32 as u32, float16 and bfloat16 as
// u16) and decoded here; activations are float32 texel views.

#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u
#define DT_E4M3 3u   // FP8 weights, one byte each (weights.glsl)
#define DT_E5M2 4u

float decode16(uint bits, uint dtype)
{
    return dtype == DT_F16 ? unpackHalf2x16(bits).x : uintBitsToFloat(bits << 16);
}

float decode_bits(uint bits, uint dtype)
{
    return dtype == DT_F32 ? uintBitsToFloat(bits) : decode16(bits, dtype);
}

// v rounded to the nearest float16 value (ties to even), as float16
// arithmetic rounds every result (values beyond float16's range become
// infinite, those below its normal range keep its subnormal spacing)
float round_f16(float v)
{
    float a = abs(v);
    if (a >= 65520.0) return v / 0.0;
    if (a < 6.103515625e-05) return roundEven(v * 16777216.0) / 16777216.0;
    uint u = floatBitsToUint(v);
    return uintBitsToFloat((u + 0x0FFFu + ((u >> 13) & 1u)) & 0xFFFFE000u);
}

// v rounded to the nearest bfloat16 value (ties to even; NaN stays NaN)
float round_bf16(float v)
{
    uint u = floatBitsToUint(v);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return v;
    return uintBitsToFloat((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

// v as a buffer of dtype t keeps it
float round_to(float v, uint t)
{
    return t == DT_F16 ? round_f16(v) : t == DT_BF16 ? round_bf16(v) : v;
}

float silu(float v)
{
    return v / (1.0 + exp(-v));
}

// tanh written out rather than left to the driver (whose built-in may
// lose precision near 0 or overflow): exp of a non-positive argument only,
// and the series near 0 where 1 - exp(-2|v|) would cancel
float tanh_f(float v)
{
    float a = abs(v);
    if (a < 0.0625) {
        float v2 = v * v;
        return v * (1.0 + v2 * (-1.0 / 3.0 + v2 * (2.0 / 15.0)));
    }
    float t = exp(-2.0 * a);
    float r = (1.0 - t) / (1.0 + t);
    return v < 0.0 ? -r : r;
}

// GELU, tanh approximation (Gemma's gelu_pytorch_tanh)
float gelu_tanh(float v)
{
    return 0.5 * v * (1.0 + tanh_f(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

// the gate of a gated MLP: act 0 SiLU, 1 GELU (tanh)
float gate_act(float v, uint act)
{
    return act == 1u ? gelu_tanh(v) : silu(v);
}

// soft-capping c * tanh(v / c) (Gemma 2); c 0: none
float softcap(float v, float c)
{
    return c != 0.0 ? c * tanh_f(v / c) : v;
}

// The value of an FP8 byte, exactly as formats/quant.c reads it: e4m3fn
// (bias 7, no infinities, S.1111.111 NaN) or e5m2 (bias 15, IEEE-like).
// Normal values are float32 bit patterns; subnormals a multiple of the
// smallest one.
float decode_fp8(uint b, uint dtype)
{
    uint sign = (b & 0x80u) << 24;
    float v;
    if (dtype == DT_E4M3) {
        uint e = (b >> 3) & 15u, m = b & 7u;
        if (e == 15u && m == 7u) return uintBitsToFloat(0x7FC00000u);
        v = e == 0u ? float(m) * 0.001953125 : uintBitsToFloat(((e + 120u) << 23) | (m << 20));
    } else {
        uint e = (b >> 2) & 31u, m = b & 3u;
        if (e == 31u) return uintBitsToFloat(sign | (m == 0u ? 0x7F800000u : 0x7FC00000u));
        v = e == 0u ? float(m) * 1.52587890625e-05 : uintBitsToFloat(((e + 112u) << 23) | (m << 21));
    }
    return uintBitsToFloat(floatBitsToUint(v) | sign);
}

// v rounded to FP8 as formats/quant.c's fp8_*_from_f32 rounds it: to the
// nearest value (ties to even), magnitudes at or beyond the largest finite
// one (448, 57344) saturate to it, NaN stays NaN
float round_fp8(float v, uint dtype)
{
    if (isnan(v)) return v;
    float top = dtype == DT_E4M3 ? 448.0 : 57344.0;
    int man = dtype == DT_E4M3 ? 3 : 2, min_exp = dtype == DT_E4M3 ? -6 : -14;
    float a = abs(v);
    float r = top;
    if (a < top) {
        int e;
        frexp(a, e);                                   // a = f * 2^e, f in [0.5, 1)
        float quantum = ldexp(1.0, max(e - 1, min_exp) - man);
        r = min(roundEven(a / quantum) * quantum, top); // exact: a power of two divides
    }
    return v < 0.0 ? -r : r;
}
