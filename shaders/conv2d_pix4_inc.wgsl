// Shared by conv2d_reg and conv2d_q: an invocation's 4 output pixels
// (pixel j of invocation li is wg.x·256 + j·64 + li) and the gather of their
// input taps. Needs: SH, SW (u32 stride), BOUNDS, and p.oh, p.ow, p.h, p.w,
// p.pt, p.pl, binding x.

struct Pix {
  pbase: u32,       // the first of the 4 pixels
  pix: vec4<u32>,   // the 4 pixels, clamped to the last one
  ihb: vec4<i32>,   // their top-left input row and column (padding applied)
  iwb: vec4<i32>,
}

fn pixels(wg: vec3<u32>, li: u32, ohw: u32) -> Pix {
  var r: Pix;
  r.pbase = wg.x * 256u + li;
  r.pix = min(r.pbase + vec4<u32>(0u, 64u, 128u, 192u), vec4<u32>(ohw - 1u));
  let oh = r.pix / vec4<u32>(p.ow);
  let ow = r.pix - oh * p.ow;
  r.ihb = vec4<i32>(oh * SH) - vec4<i32>(p.pt);
  r.iwb = vec4<i32>(ow * SW) - vec4<i32>(p.pl);
  return r;
}

// xtaps loads the inputs of kernel tap (row, column kw) of the 4 pixels from
// channel base xc: rok says which rows are inside, rowb is their first
// element; zero outside the input (BOUNDS false: the input index is the
// pixel index).
fn xtaps(xc: u32, px: Pix, rok: vec4<bool>, rowb: vec4<i32>, kw: u32) -> vec4<f32> {
  if (BOUNDS) {
    let wi = vec4<i32>(i32(p.w));
    let iw = px.iwb + vec4<i32>(i32(kw));
    let ok = rok & (iw >= vec4<i32>(0)) & (iw < wi);
    let ix = vec4<u32>(select(vec4<i32>(i32(xc)), rowb + iw, ok));
    return select(vec4<f32>(0.0), vec4<f32>(x[ix.x], x[ix.y], x[ix.z], x[ix.w]), ok);
  }
  let ix = xc + px.pix;
  return vec4<f32>(x[ix.x], x[ix.y], x[ix.z], x[ix.w]);
}
