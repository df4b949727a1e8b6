#version 450
// The last row of x (the prefill's final token, whose logits are wanted).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint H = 64;

layout(binding = 0) uniform samplerBuffer x;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint x_base;
    uint y_base;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.x;
    if (i < H) y[p.y_base + i] = texelFetch(x, int(p.x_base + (p.rows - 1u) * H + i)).x;
}
