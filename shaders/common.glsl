// Shared by every kernel (included, not compiled alone): how stored numbers
// arrive and how they are decoded. Weights and scales are bound through
// unsigned texel views as raw bits (float32 as u32, float16 and bfloat16 as
// u16) and decoded here; activations are float32 texel views.

#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u

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
