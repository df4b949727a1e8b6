#version 450
// Soft-capping y = c * tanh(x / c) over `count` floats (Gemma 2's final
// logits); y may be x itself (each invocation reads its element before it
// writes it).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const float CAP = 30.0;

layout(binding = 0) uniform samplerBuffer x;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint count;
    uint x_base;
    uint y_base;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG + gl_GlobalInvocationID.x;
    if (i >= p.count) return;
    y[p.y_base + i] = softcap(texelFetch(x, int(p.x_base + i)).x, CAP);
}
