#version 450
// Elementwise y = a + b over `count` floats (the unfused residual add).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(binding = 0) uniform samplerBuffer a;
layout(binding = 1) uniform samplerBuffer b;
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint count;
    uint a_base;
    uint b_base;
    uint y_base;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG + gl_GlobalInvocationID.x;
    if (i >= p.count) return;
    y[p.y_base + i] = texelFetch(a, int(p.a_base + i)).x + texelFetch(b, int(p.b_base + i)).x;
}
