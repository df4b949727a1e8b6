// Reading a weight matrix of logical shape [rows, K] however a scheme
// stores it (included by matmul, embed and dequantize). Each function takes
// the views of the stored data (w: the weights or codes, s: the scales) and
// the element offset of the first bound row in each. Row numbers are
// relative to the bound rows.
//
//   WFMT 0  plain: element dtype WDT; 4 elements a texel when WVEC
//   WFMT 1  group-quantized NK: q_weight [rows, G*WPG] u32 read as one uvec4
//           texel per group (WPG = 4), q_scale [rows, G] of dtype SDT
//   WFMT 2  group-quantized KN: q_weight [G*WPG, NTOT] and q_scale [G, NTOT]
//           (transposed: one u32 word a texel)
//   WFMT 3  FP8 (matmul only): q_weight [rows, K] bytes of format WDT
//           (DT_E4M3, DT_E5M2), four a u32 word, four words a texel when
//           WVEC (K % 16 == 0) else one; with FP8_SCALED the tensor's scale
//           (q_scale, float32 [1]) through s and the activation scale
//           (q_calibration_scale) through the matmul's own binding
// A group of GS elements holds EPW = 32 / BITS codes per word, element 0 in
// the low bits; its value is (code - MAXI) * scale.

layout(constant_id = 10) const uint WFMT = 0;
layout(constant_id = 11) const uint WDT = 0;
layout(constant_id = 12) const uint BITS = 4;
layout(constant_id = 13) const uint GS = 32;
layout(constant_id = 14) const uint SDT = 1;
layout(constant_id = 15) const uint WVEC = 1;
layout(constant_id = 16) const uint NTOT = 1;   // KN: the stored row length (all output columns)
layout(constant_id = 17) const uint FP8_SCALED = 0;

const uint EPW = 32u / BITS;
const uint WPG = 4u;
const uint MAXI = (1u << (BITS - 1u)) - 1u;
const uint CODE_MASK = (1u << BITS) - 1u;

// groups per row
uint groups_of(uint k)
{
    return (k + GS - 1u) / GS;
}

uvec4 group_words(usamplerBuffer w, uint base, uint n, uint g, uint ngroups)
{
    if (WFMT == 1u) return texelFetch(w, int(base + n * ngroups + g));
    uvec4 q;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = texelFetch(w, int(base + (g * WPG + i) * NTOT + n)).x;
    return q;
}

float group_scale(usamplerBuffer s, uint base, uint n, uint g, uint ngroups)
{
    uint at = WFMT == 1u ? n * ngroups + g : g * NTOT + n;
    return decode_bits(texelFetch(s, int(base + at)).x, SDT);
}

// code e (0 .. EPW-1) of a word, times 2^(BITS*e) when it is read in place
// (the caller pre-divides x), or exactly when it is the top code of a full
// 32-bit word (read by a shift: the mask would set the sign bit)
bool code_shifted(uint e)
{
    return BITS * (e + 1u) == 32u;
}

float code_in_place(uint word, uint e)
{
    if (code_shifted(e)) return float(word >> (BITS * e));
    return float(int(word & (CODE_MASK << (BITS * e))));
}

float code_prescale(uint e)
{
    return code_shifted(e) ? 1.0 : exp2(-float(BITS * e));
}

float code_value(uint word, uint e)
{
    return float((word >> (BITS * e)) & CODE_MASK);
}

// the dequantized weight of code e as the scheme's arithmetic gives it:
// (code - MAXI) * scale, rounded to float16 for float16 schemes
float dequant(uint word, uint e, float scale)
{
    float v = (code_value(word, e) - float(MAXI)) * scale;
    return SDT == DT_F16 ? round_f16(v) : v;
}

// plain weights: 4 elements at column c4*4 (WVEC), or one at column c
vec4 plain4(usamplerBuffer w, uint base, uint n, uint c4, uint k)
{
    uvec4 b = texelFetch(w, int(base + n * (k / 4u) + c4));
    if (WDT == DT_F32) return uintBitsToFloat(b);
    return vec4(decode16(b.x, WDT), decode16(b.y, WDT), decode16(b.z, WDT), decode16(b.w, WDT));
}

float plain1(usamplerBuffer w, uint base, uint n, uint c, uint k)
{
    return decode_bits(texelFetch(w, int(base + n * k + c)).x, WDT);
}

// FP8: word i (0 .. BLK/4 - 1) of block blk of row n, BLK = 16 (WVEC) or 4
uint fp8_word(usamplerBuffer w, uint base, uint n, uint blk, uint i, uint k)
{
    if (WVEC != 0u) return texelFetch(w, int(base + n * (k / 16u) + blk))[i];
    return texelFetch(w, int(base + n * (k / 4u) + blk)).x;
}
