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

float silu(float v)
{
    return v / (1.0 + exp(-v));
}
