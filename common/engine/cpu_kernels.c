#include "common/engine/cpu_kernels.h"

#include <math.h>

float k_dot(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void k_rms_norm(const float *x, const float *w, int64_t n, double eps, float *y)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

void k_add(const float *a, const float *b, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

float k_silu(float x)
{
    return x / (1.0f + expf(-x));
}

void k_silu_mul(const float *gu, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = k_silu(gu[i]) * gu[n + i];
}

void k_rope_frequencies(int head_dim, double theta, const struct rope_scaling *rs, float *inv_freq)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float f = (float)(1.0 / pow(theta, (double)(2 * i) / head_dim));
        if (rs && rs->kind == 1) {
            /* wavelengths longer than the original context are stretched by
             * `factor`, short ones kept, and the band between blended */
            double old = (double)rs->original_max_position;
            double low_wavelen = old / rs->low_freq_factor, high_wavelen = old / rs->high_freq_factor;
            double wavelen = 2 * M_PI / f;
            if (wavelen > low_wavelen) {
                f = (float)(f / rs->factor);
            } else if (wavelen >= high_wavelen) {
                double smooth = (old / wavelen - rs->low_freq_factor) / (rs->high_freq_factor - rs->low_freq_factor);
                f = (float)((1 - smooth) * f / rs->factor + smooth * f);
            }
        }
        inv_freq[i] = f;
    }
}

void k_rope_table(int head_dim, int64_t pos, const float *inv_freq, float *cos_out, float *sin_out)
{
    for (int i = 0; i < head_dim / 2; i++) {
        double angle = (double)pos * inv_freq[i];
        cos_out[i] = (float)cos(angle);
        sin_out[i] = (float)sin(angle);
    }
}

void k_rope_apply(float *head, int head_dim, const float *cos_t, const float *sin_t)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float c = cos_t[i], s = sin_t[i];
        float x1 = head[i], x2 = head[i + half];
        head[i] = x1 * c - x2 * s;
        head[i + half] = x2 * c + x1 * s;
    }
}

void k_rope(float *head, int head_dim, int64_t pos, const float *inv_freq)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        double angle = (double)pos * inv_freq[i];
        float c = (float)cos(angle), s = (float)sin(angle);
        float x1 = head[i], x2 = head[i + half];
        head[i] = x1 * c - x2 * s;
        head[i + half] = x2 * c + x1 * s;
    }
}
