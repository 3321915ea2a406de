// Conv2d NCHW with q8 weights (int8 + f16 scales): conv2d_q_inc.wgsl
// with the format's dequantization.
// Specialised by: KH, KW, SH, SW (u32), QG (u32 group size), BF16, BOUNDS.
//#include quant_q8_inc
//#include conv2d_q_inc
