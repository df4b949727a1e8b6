/* Float conversions against the compiler's own IEEE half type and against
 * hand-worked bfloat16 cases. */
#include <math.h>

#include "formats/dtype.h"
#include "tests/unit/test.h"

TEST(every_half_widens_like_the_compiler)
{
    for (uint32_t h = 0; h < 65536; h++) {
        union { _Float16 f; uint16_t u; } v = {.u = (uint16_t)h};
        float want = (float)v.f;
        float got = f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : f32_bits(want) != f32_bits(got)) {
            TEST_FAIL_AT("half 0x%04x: got %g, want %g", h, got, want);
            return;
        }
    }
}

static void check_narrow(float f)
{
    union { _Float16 f; uint16_t u; } want = {.f = (_Float16)f};
    uint16_t got = f32_to_f16(f);
    if (isnan(f) ? (got & 0x7c00) != 0x7c00 || !(got & 0x3ff) : got != want.u)
        TEST_FAIL_AT("f32 %a (0x%08x): got 0x%04x, want 0x%04x", f, f32_bits(f), got, want.u);
}

TEST(narrowing_to_half_rounds_like_the_compiler)
{
    /* every half value, and the midpoints and neighbours between them */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float a = f16_to_f32((uint16_t)h), b = f16_to_f32((uint16_t)(h + 1));
        float mid = (a + b) / 2;
        check_narrow(a);
        check_narrow(-a);
        check_narrow(mid);
        check_narrow(-mid);
        check_narrow(nextafterf(mid, 0));
        check_narrow(nextafterf(mid, INFINITY));
    }
    uint64_t s = 88172645463325252u;
    for (int i = 0; i < 2000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        check_narrow(f32_from_bits((uint32_t)s));
    }
    check_narrow(65504.0f);
    check_narrow(65519.99f);
    check_narrow(65520.0f);
    check_narrow(INFINITY);
    check_narrow(-INFINITY);
    check_narrow(NAN);
    check_narrow(1e-8f);
    check_narrow(2.98023224e-8f); /* 2^-25: a tie that rounds to zero */
}

TEST(bfloat16_round_to_nearest_even)
{
    CHECK_EQ(f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ(f32_to_bf16(f32_from_bits(0x3f808000)), 0x3f80); /* tie, even stays */
    CHECK_EQ(f32_to_bf16(f32_from_bits(0x3f818000)), 0x3f82); /* tie, odd rounds up */
    CHECK_EQ(f32_to_bf16(f32_from_bits(0x3f808001)), 0x3f81);
    CHECK_EQ(f32_to_bf16(f32_from_bits(0x7f7fffff)), 0x7f80); /* rounds to inf */
    CHECK_EQ(f32_to_bf16(NAN), 0x7fc0);
    CHECK_EQ(f32_to_bf16(-NAN), 0xffc0);
    CHECK(bf16_to_f32(0x3f80) == 1.0f);
}

TEST(bfloat16_storage_encoding_follows_tvmjs)
{
    /* below 0x7F7F0000: round to nearest even */
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0x3f808000)), 0x3f80);
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0x3f818000)), 0x3f82);
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0xbf818000)), 0xbf82);
    /* at or above it: truncate, so the largest floats stay finite */
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0x7f7fffff)), 0x7f7f);
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0xff7fffff)), 0xff7f);
    CHECK_EQ(f32_to_bf16_storage(INFINITY), 0x7f80);
    CHECK_EQ(f32_to_bf16_storage(-INFINITY), 0xff80);
    /* NaN compares false and is truncated */
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0x7fc00001)), 0x7fc0);
    CHECK_EQ(f32_to_bf16_storage(f32_from_bits(0x7f800001)), 0x7f80);
}

TEST(dtype_names)
{
    CHECK_EQ(dtype_from_name("float16"), DT_F16);
    CHECK_EQ(dtype_from_name("float8_e4m3fn"), DT_F8_E4M3);
    CHECK_EQ(dtype_from_name("float17"), DT_INVALID);
    CHECK_STR(dtype_name(DT_U32), "uint32");
    CHECK_EQ(dtype_size(DT_BF16), 2);
}

TEST_MAIN()
