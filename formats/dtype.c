#include "formats/dtype.h"

#include <string.h>

static const struct {
    enum dtype t;
    const char *name;
    size_t size;
} table[] = {
    {DT_F32, "float32", 4},   {DT_F16, "float16", 2},   {DT_BF16, "bfloat16", 2},
    {DT_F64, "float64", 8},   {DT_U32, "uint32", 4},    {DT_I32, "int32", 4},
    {DT_I64, "int64", 8},     {DT_U8, "uint8", 1},      {DT_I8, "int8", 1},
    {DT_I16, "int16", 2},     {DT_BOOL, "bool", 1},     {DT_F8_E4M3, "float8_e4m3fn", 1},
    {DT_F8_E5M2, "float8_e5m2", 1},
};

const char *dtype_name(enum dtype t)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].t == t) return table[i].name;
    return "invalid";
}

enum dtype dtype_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(table[i].name, name)) return table[i].t;
    return DT_INVALID;
}

size_t dtype_size(enum dtype t)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].t == t) return table[i].size;
    return 0;
}

uint16_t f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) /* inf or NaN (NaN keeps a quiet payload bit) */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    if (absx >= 0x477ff000) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000) { /* below the smallest normal half: subnormal or 0 */
        if (absx < 0x33000000) return (uint16_t)sign; /* < 2^-25 rounds to 0 (tie included) */
        uint32_t mant = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        /* in units of the half subnormal step 2^-24: mant * 2^(e-126) */
        uint32_t q = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent (127 → 15) and round 23 → 10 mantissa bits */
    uint32_t h = ((absx - 0x38000000) >> 13);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exponent: fine */
    return (uint16_t)(sign | h);
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000 | (mant << 13));
    if (exp == 0) {
        if (!mant) return f32_from_bits(sign);
        /* subnormal: mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)(((x >> 16) & 0x8000) | 0x7fc0);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

float bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

uint16_t f32_to_bf16_storage(float f)
{
    uint32_t x = f32_bits(f);
    /* |f| < 0x7F7F0000 as a float, compared as a float like tvmjs does
     * (so NaN takes the truncating branch) */
    float limit = f32_from_bits(0x7f7f0000);
    float a = f < 0 ? -f : f;
    if (a < limit) return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
    return (uint16_t)(x >> 16);
}
