// Conv2d NCHW with quantized weights, shared by conv2d_q8 and conv2d_q4
// (each includes its format's dequant snippet, quant_q8_inc.wgsl or
// quant_q4_inc.wgsl, which provides dq). Same implicit GEMM as
// conv2d_reg.wgsl: each invocation computes 4 output channels × 4 output
// pixels, the 64 invocations of a workgroup share the channels and take
// consecutive pixels; every weight tap is dequantized where it is used (no
// f32 copy of the weights).
//
// Needs: KH, KW, SH, SW (u32), QG (u32 group size), BF16 (bias is f16),
// BOUNDS (false only for 1×1 stride-1 unpadded convs).
//
// One dispatch covers samples wg.z, output channels [co0, co0+cout) of the
// weight (written from channel 0 of its output binding) and input channels
// [0, cin) of its x binding; a channel group of a larger input adds into
// the output (flags bit 1) instead of writing it.
struct P {
  cin: u32,      // input channels in this group
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  cout: u32,     // output channels in this dispatch
  rowWords: u32, // qw words per weight row (output channel)
  kofs: u32,     // first weight element of this channel group in a row (ci0·KH·KW)
  pt: i32,       // top / left padding
  pl: i32,
  xb: u32,       // element bases inside the x, bias and out bindings
  co0: u32,      // first weight row of this dispatch
  bb: u32,
  ob: u32,
  xns: u32,      // per-sample element strides of x and out in their bindings
  ons: u32,
  flags: u32,    // bit 0: add bias; bit 1: accumulate into out
  ngroups: u32,  // scale groups per weight row
  sbase: u32,    // first scale in qw (the format's scale units)
  _p0: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<u32>;
@group(0) @binding(3) var<storage, read> bs: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

//#include conv2d_out_inc
//#include conv2d_pix4_inc

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ohw = p.oh * p.ow;
  let co = wg.y * 4u;
  let n = wg.z;
  let px = pixels(wg, li, ohw);
  let hi = vec4<i32>(i32(p.h));
  let wi = vec4<i32>(i32(p.w));
  let last = p.cout - 1u;
  // Weight rows of the four channels: value word base and scale base.
  var q: array<u32, 4>;
  var s: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) {
    let row = p.co0 + min(co + j, last);
    q[j] = row * p.rowWords;
    s[j] = p.sbase + row * p.ngroups;
  }
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var xc = p.xb + n * p.xns;
  var e = p.kofs;
  let hw = p.h * p.w;
  for (var ci = 0u; ci < p.cin; ci++) {
    for (var kh = 0u; kh < KH; kh++) {
      let ih = px.ihb + vec4<i32>(i32(kh));
      let rok = (ih >= vec4<i32>(0)) & (ih < hi);
      let rowb = vec4<i32>(i32(xc)) + ih * wi;
      for (var kw = 0u; kw < KW; kw++) {
        let xv = xtaps(xc, px, rok, rowb, kw);
        let k = e + kh * KW + kw;
        a0 += dq(q[0], s[0], k) * xv;
        a1 += dq(q[1], s[1], k) * xv;
        a2 += dq(q[2], s[2], k) * xv;
        a3 += dq(q[3], s[3], k) * xv;
      }
    }
    xc += hw;
    e += KK;
  }
  let obase = p.ob + n * p.ons;
  store(co, px.pbase, 64u, ohw, obase, a0);
  store(co + 1u, px.pbase, 64u, ohw, obase, a1);
  store(co + 2u, px.pbase, 64u, ohw, obase, a2);
  store(co + 3u, px.pbase, 64u, ohw, obase, a3);
}
