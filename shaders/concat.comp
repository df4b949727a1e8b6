#version 450
// Columns side by side: y[row] = x0[row] | x1[row] | ... (up to 6 inputs of
// C0..C5 columns; Gemma 3's separate q, k and v projections into one
// q/k/v row). One invocation an output element.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint C0 = 1;
layout(constant_id = 2) const uint C1 = 1;
layout(constant_id = 3) const uint C2 = 0;       // 0: no such input
layout(constant_id = 4) const uint C3 = 0;
layout(constant_id = 5) const uint C4 = 0;
layout(constant_id = 6) const uint C5 = 0;

layout(binding = 0) uniform samplerBuffer x0;
layout(binding = 1) uniform samplerBuffer x1;
layout(binding = 2) uniform samplerBuffer x2;
layout(binding = 3) uniform samplerBuffer x3;
layout(binding = 4) uniform samplerBuffer x4;
layout(binding = 5) uniform samplerBuffer x5;
layout(std430, binding = 6) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint rows;
    uint base0;
    uint base1;
    uint base2;
    uint base3;
    uint base4;
    uint base5;
    uint y_base;
} p;

const uint OUT = C0 + C1 + C2 + C3 + C4 + C5;

void main()
{
    uint i = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (i >= OUT || row >= p.rows) return;
    float v;
    uint c = i;
    if (c < C0) {
        v = texelFetch(x0, int(p.base0 + row * C0 + c)).x;
    } else if ((c -= C0) < C1) {
        v = texelFetch(x1, int(p.base1 + row * C1 + c)).x;
    } else if ((c -= C1) < C2) {
        v = texelFetch(x2, int(p.base2 + row * C2 + c)).x;
    } else if ((c -= C2) < C3) {
        v = texelFetch(x3, int(p.base3 + row * C3 + c)).x;
    } else if ((c -= C3) < C4) {
        v = texelFetch(x4, int(p.base4 + row * C4 + c)).x;
    } else {
        c -= C4;
        v = texelFetch(x5, int(p.base5 + row * C5 + c)).x;
    }
    y[p.y_base + row * OUT + i] = v;
}
