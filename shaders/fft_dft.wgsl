// Direct 1-D DFT along one axis for lengths that are not powers of two:
// one invocation per output element, y[k] = Σ_m x[m]·ω^((k·m) mod N),
// ω = e^(∓2πi/N), from a table of exact twiddles. O(N) per element.
struct P {
  lines: u32,   // lines in this dispatch
  n: u32,       // axis length N
  _s: u32,
  inner: u32,   // line → first element: (line / inner)·outer + line % inner
  outer: u32,
  stride: u32,  // element stride along the axis
  ir: u32,      // element bases of the bindings
  ii: u32,
  or_: u32,
  oi: u32,
  ot: u32,
  nx: u32,      // workgroups along x (flat id = x + y·nx)
  scale: f32,   // output scale (1/N for an inverse transform)
  sign: f32,    // −1 forward, +1 inverse
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xr: array<f32>;
@group(0) @binding(2) var<storage, read> xi: array<f32>;
@group(0) @binding(3) var<storage, read> tw: array<f32>;  // (cos, −sin) of 2πk/N, k < N
@group(0) @binding(4) var<storage, read_write> yr: array<f32>;
@group(0) @binding(5) var<storage, read_write> yi: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = (wg.x + wg.y * p.nx) * 256u + li;
  if (id >= p.lines * p.n) { return; }
  let line = id / p.n;
  let k = id % p.n;
  let base = (line / p.inner) * p.outer + line % p.inner;
  var sr = 0.0;
  var si = 0.0;
  var e = 0u;  // (k·m) mod N, stepped without overflow
  for (var m = 0u; m < p.n; m = m + 1u) {
    let c = tw[p.ot + 2u * e];
    let sn = -p.sign * tw[p.ot + 2u * e + 1u];
    let xa = xr[p.ir + base + m * p.stride];
    let xb = xi[p.ii + base + m * p.stride];
    sr = sr + xa * c - xb * sn;
    si = si + xa * sn + xb * c;
    e = e + k;
    if (e >= p.n) { e = e - p.n; }
  }
  let j = base + k * p.stride;
  yr[p.or_ + j] = sr * p.scale;
  yi[p.oi + j] = si * p.scale;
}
