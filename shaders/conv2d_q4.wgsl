// Conv2d NCHW with q4 weights (uint4 + f16 scale and min per group):
// conv2d_q_inc.wgsl with the format's dequantization.
// Specialised by: KH, KW, SH, SW (u32), QG (u32 group size), BF16, BOUNDS.
//#include quant_q4_inc
//#include conv2d_q_inc
