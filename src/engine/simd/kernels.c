// Training kernels for the wasm backend, compiled to WebAssembly SIMD
// (scripts/build-simd.mjs) and run on tfjs-backend-wasm's own memory, which
// the module imports: no copies in or out.
//
// The memory-bound kernels (BatchNorm, sums, the depthwise filter gradient)
// replace JS loops that ran at 6-10 ns per element and pass. Each does the
// arithmetic of its JS twin in the same order and rounding (float64 where JS
// numbers are, float32 where the twin rounds with Math.fround), so the two give
// identical results. The transposes and MaxPoolGrad replace tfjs's scalar
// loops, the batched product one XNNPACK call per entry, which re-packs its
// right operand every time, and the Fourier ConvNorm's kernels its tf-op form,
// whose every step was a pass over the batch.
//
// The module owns no memory: no static data and no stack (the build checks
// both), since every byte of the imported memory belongs to tfjs's allocator.
// Scratch space comes from the caller, allocated with tfjs's malloc.

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// acc + x y. The products' module is built twice: with relaxed SIMD's madd, which V8 emits
// as one fused multiply-add on CPUs with FMA (twice the multiply-add throughput, one rounding
// instead of two), and with a multiply and an add for engines without relaxed SIMD.
#ifdef FUSED_MULTIPLY_ADD
#define MADD(acc, x, y) __builtin_wasm_relaxed_madd_f32x4((x), (y), (acc))
#else
#define MADD(acc, x, y) wasm_f32x4_add((acc), wasm_f32x4_mul((x), (y)))
#endif

// The 4 x 8 register block of the products, the convolution and the filter gradient: sums
// c00..c31 (row r, columns 4 j .. 4 j + 3 in crj) in registers. A step adds four broadcast values
// (one per row) times two vectors b0, b1 (the block's 8 columns of one row of the other operand).
#define BLOCK4X8_ZERO                                                                                  \
  v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, \
         c31 = c00
#define BLOCK4X8_LOAD(y0, y1, y2, y3) \
  do {                                \
    c00 = wasm_v128_load(y0);         \
    c01 = wasm_v128_load((y0) + 4);   \
    c10 = wasm_v128_load(y1);         \
    c11 = wasm_v128_load((y1) + 4);   \
    c20 = wasm_v128_load(y2);         \
    c21 = wasm_v128_load((y2) + 4);   \
    c30 = wasm_v128_load(y3);         \
    c31 = wasm_v128_load((y3) + 4);   \
  } while (0)
#define BLOCK4X8_STEP(a0, a1, a2, a3, b0, b1) \
  do {                                        \
    v128_t x_ = wasm_f32x4_splat(a0);         \
    c00 = MADD(c00, x_, b0);                  \
    c01 = MADD(c01, x_, b1);                  \
    x_ = wasm_f32x4_splat(a1);                \
    c10 = MADD(c10, x_, b0);                  \
    c11 = MADD(c11, x_, b1);                  \
    x_ = wasm_f32x4_splat(a2);                \
    c20 = MADD(c20, x_, b0);                  \
    c21 = MADD(c21, x_, b1);                  \
    x_ = wasm_f32x4_splat(a3);                \
    c30 = MADD(c30, x_, b0);                  \
    c31 = MADD(c31, x_, b1);                  \
  } while (0)
// Rows 3 to 0 in that order: a caller whose short block aliases missing rows to row 0 has row 0
// stored last.
#define BLOCK4X8_STORE(y0, y1, y2, y3) \
  do {                                 \
    wasm_v128_store(y3, c30);          \
    wasm_v128_store((y3) + 4, c31);    \
    wasm_v128_store(y2, c20);          \
    wasm_v128_store((y2) + 4, c21);    \
    wasm_v128_store(y1, c10);          \
    wasm_v128_store((y1) + 4, c11);    \
    wasm_v128_store(y0, c00);          \
    wasm_v128_store((y0) + 4, c01);    \
  } while (0)

// sums[k] += x[r, k] - pivot[k], squares[k] += (x[r, k] - pivot[k])^2 over rows, in float64.
EXPORT(moments)
void moments(const float* x, int rows, int c, const float* pivot, double* sums, double* squares) {
  for (int r = 0; r < rows; r++) {
    const float* row = x + (long)r * c;
    for (int k = 0; k < c; k++) {
      double d = (double)row[k] - (double)pivot[k];
      sums[k] += d;
      squares[k] += d * d;
    }
  }
}

// y[r, k] = (x[r, k] - centre[k]) * scale[k] + shift[k] for rows first..last-1.
EXPORT(normalize)
void normalize(const float* x, float* y, int c, const float* centre, const float* scale, const float* shift,
               int first, int last) {
  for (int r = first; r < last; r++) {
    const float* in = x + (long)r * c;
    float* out = y + (long)r * c;
    for (int k = 0; k < c; k++) {
      out[k] = (float)(((double)in[k] - (double)centre[k]) * (double)scale[k] + (double)shift[k]);
    }
  }
}

// sumDy[k] += dy[r, k], sumDyXc[k] += dy[r, k] (x[r, k] - centre[k]) over rows, in float64.
EXPORT(gradient_sums)
void gradient_sums(const float* dy, const float* x, int rows, int c, const float* centre, double* sumDy,
                   double* sumDyXc) {
  for (int r = 0; r < rows; r++) {
    const float* d = dy + (long)r * c;
    const float* in = x + (long)r * c;
    for (int k = 0; k < c; k++) {
      sumDy[k] += (double)d[k];
      sumDyXc[k] += (double)d[k] * ((double)in[k] - (double)centre[k]);
    }
  }
}

// dx[r, k] = a[k] dy[r, k] - slope[k] (x[r, k] - centre[k]) - offset[k] for rows first..last-1.
EXPORT(gradient_input)
void gradient_input(const float* dy, const float* x, float* dx, int c, const float* a, const float* slope,
                    const float* centre, const float* offset, int first, int last) {
  for (int r = first; r < last; r++) {
    const float* d = dy + (long)r * c;
    const float* in = x + (long)r * c;
    float* out = dx + (long)r * c;
    for (int k = 0; k < c; k++) {
      out[k] = (float)((double)a[k] * (double)d[k] - (double)slope[k] * ((double)in[k] - (double)centre[k])
                       - (double)offset[k]);
    }
  }
}

// sums[k] += x[r, k] over rows, in float64.
EXPORT(sum_rows)
void sum_rows(const float* x, int rows, int c, double* sums) {
  for (int r = 0; r < rows; r++) {
    const float* row = x + (long)r * c;
    for (int k = 0; k < c; k++) sums[k] += (double)row[k];
  }
}

// The range [*lo, *hi) of output positions whose tap t lands inside the input: 0 <= o s + t - pad < size.
static void valid_outputs(int t, int pad, int stride, int size, int outSize, int* lo, int* hi) {
  int l = pad - t <= 0 ? 0 : (pad - t + stride - 1) / stride;
  int h = (size - 1 + pad - t) < 0 ? 0 : (size - 1 + pad - t) / stride + 1;
  *lo = l;
  *hi = h < outSize ? h : outSize;
}

// Images first..last-1 of a depthwise filter gradient with channel multiplier 1:
// partial[b, t, k] = sum over the valid outputs (p, q) of tap t (row-major of kh x kw) of
// x[b, p sh + ta - top, q sw + tb - left, k] dy[b, p, q, k]. Each output row's terms are summed
// in float32 (multiply, then add: no fused multiply-add, so the JS twin can round the same way),
// the rows in float64. Image by image, every tap in turn, so an image's x and dy are read from
// cache after the first tap (by tap, each tap streamed the whole batch: nine passes). The caller
// adds the images' partial sums in order.
EXPORT(depthwise_filter)
void depthwise_filter(const float* x, const float* dy, int h, int w, int c, int kh, int kw, int sh, int sw, int ho,
                      int wo, int top, int left, double* partial, int first, int last) {
  int blocked = c - c % 4;
  for (int b = first; b < last; b++) {
    for (int tap = 0; tap < kh * kw; tap++) {
      int ta = tap / kw, tb = tap % kw;
      int pLo, pHi, qLo, qHi;
      valid_outputs(ta, top, sh, h, ho, &pLo, &pHi);
      valid_outputs(tb, left, sw, w, wo, &qLo, &qHi);
      double* s = partial + ((long)b * kh * kw + tap) * c;
      for (int k = 0; k < blocked; k += 4) {
        v128_t lo = wasm_f64x2_splat(0), hi = lo;
        for (int p = pLo; p < pHi; p++) {
          const float* xr = x + ((long)(b * h + p * sh + ta - top) * w + qLo * sw + tb - left) * c + k;
          const float* dr = dy + ((long)(b * ho + p) * wo + qLo) * c + k;
          v128_t row = wasm_f32x4_splat(0);
          for (int q = qLo; q < qHi; q++, xr += (long)sw * c, dr += c) {
            row = wasm_f32x4_add(row, wasm_f32x4_mul(wasm_v128_load(xr), wasm_v128_load(dr)));
          }
          lo = wasm_f64x2_add(lo, wasm_f64x2_promote_low_f32x4(row));
          hi = wasm_f64x2_add(hi, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(row, row, 2, 3, 0, 1)));
        }
        wasm_v128_store(s + k, lo);
        wasm_v128_store(s + k + 2, hi);
      }
      for (int k = blocked; k < c; k++) {
        double sum = 0;
        for (int p = pLo; p < pHi; p++) {
          const float* xr = x + ((long)(b * h + p * sh + ta - top) * w + qLo * sw + tb - left) * c + k;
          const float* dr = dy + ((long)(b * ho + p) * wo + qLo) * c + k;
          float row = 0;
          for (int q = qLo; q < qHi; q++, xr += (long)sw * c, dr += c) row += *xr * *dr;
          sum += row;
        }
        s[k] = sum;
      }
    }
  }
}

// to[0..c-1] = from[0..c-1].
static void copy_floats(float* to, const float* from, int c) {
  int k = 0;
  for (; k + 4 <= c; k += 4) wasm_v128_store(to + k, wasm_v128_load(from + k));
  for (; k < c; k++) to[k] = from[k];
}

// One phase of a strided convolution's input gradient placed into dx [n, h, w, c], images
// first..last-1: phase [n, u, v, c] (its rows sh y + rh, columns sw x + rw of dx, every one inside
// dx) copied there, or zeros where phase is 0 (no tap of the filter reaches those positions).
// The sh x sw phases, one call each, fill dx in one pass between them, where stacking them
// (tf.stack twice, then a crop) took four.
EXPORT(place_phase)
void place_phase(const float* phase, float* dx, int h, int w, int c, int u, int v, int rh, int rw, int sh, int sw,
                 int first, int last) {
  v128_t zero = wasm_f32x4_splat(0);
  for (int i = first; i < last; i++) {
    for (int y = 0; y < u; y++) {
      float* row = dx + (((long)i * h + (long)sh * y + rh) * w + rw) * c;
      const float* from = phase == 0 ? 0 : phase + ((long)i * u + y) * v * c;
      for (int x = 0; x < v; x++) {
        float* to = row + (long)sw * x * c;
        if (from == 0) {
          int k = 0;
          for (; k + 4 <= c; k += 4) wasm_v128_store(to + k, zero);
          for (; k < c; k++) to[k] = 0;
        } else {
          copy_floats(to, from + (long)x * c, c);
        }
      }
    }
  }
}

// MaxPool's gradient, images first..last-1 (NHWC, unpadded x [h, w, c] per image, dy and the
// pooled output [ho, wo, c]): each window's dy goes to the window's first maximum in row-major
// order, which is where tfjs's kernels put it (a NaN is never the maximum; a window of NaNs
// passes nothing). dx is zeroed here. `scratch`: c floats then c ints (per window, each channel's
// best value so far and its index), so that the channels stay the inner loop.
EXPORT(max_pool_gradient)
void max_pool_gradient(const float* x, const float* dy, float* dx, int h, int w, int c, int ho, int wo, int kh,
                       int kw, int sh, int sw, int top, int left, float* scratch, int first, int last) {
  float* best = scratch;
  int* at = (int*)(scratch + c);
  for (int b = first; b < last; b++) {
    const float* xb = x + (long)b * h * w * c;
    float* dxb = dx + (long)b * h * w * c;
    for (long e = 0; e < (long)h * w * c; e++) dxb[e] = 0;
    for (int p = 0; p < ho; p++) {
      int r0 = p * sh - top, r1 = r0 + kh;
      if (r0 < 0) r0 = 0;
      if (r1 > h) r1 = h;
      for (int q = 0; q < wo; q++) {
        int s0 = q * sw - left, s1 = s0 + kw;
        if (s0 < 0) s0 = 0;
        if (s1 > w) s1 = w;
        for (int d = 0; d < c; d++) {
          best[d] = -__builtin_inff();
          at[d] = -1;
        }
        for (int r = r0; r < r1; r++) {
          for (int s = s0; s < s1; s++) {
            int base = (r * w + s) * c;
            for (int d = 0; d < c; d++) {
              float v = xb[base + d];
              if (v > best[d]) {
                best[d] = v;
                at[d] = base + d;
              }
            }
          }
        }
        const float* g = dy + (((long)b * ho + p) * wo + q) * c;
        for (int d = 0; d < c; d++) {
          if (at[d] >= 0) dxb[at[d]] += g[d];
        }
      }
    }
  }
}

// out[j * outStride + i] = in[i * inStride + j] for i0 <= i < i1, j0 <= j < j1: a tile of one plane
// of a transpose (the input's last axis, j, against the output's, i), in 4 x 4 blocks transposed
// in registers.
static void transpose_tile(const float* in, float* out, int i0, int i1, int j0, int j1, int inStride,
                           int outStride) {
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    const float* r = in + (long)i * inStride;
    int j = j0;
    for (; j + 4 <= j1; j += 4) {
      v128_t a = wasm_v128_load(r + j);
      v128_t b = wasm_v128_load(r + inStride + j);
      v128_t c = wasm_v128_load(r + 2L * inStride + j);
      v128_t d = wasm_v128_load(r + 3L * inStride + j);
      v128_t ab0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5);
      v128_t ab1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
      v128_t cd0 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5);
      v128_t cd1 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
      float* o = out + (long)j * outStride + i;
      wasm_v128_store(o, wasm_i32x4_shuffle(ab0, cd0, 0, 1, 4, 5));
      wasm_v128_store(o + outStride, wasm_i32x4_shuffle(ab0, cd0, 2, 3, 6, 7));
      wasm_v128_store(o + 2L * outStride, wasm_i32x4_shuffle(ab1, cd1, 0, 1, 4, 5));
      wasm_v128_store(o + 3L * outStride, wasm_i32x4_shuffle(ab1, cd1, 2, 3, 6, 7));
    }
    for (; j < j1; j++) {
      for (int k = 0; k < 4; k++) out[(long)j * outStride + i + k] = r[(long)k * inStride + j];
    }
  }
  for (; i < i1; i++) {
    for (int j = j0; j < j1; j++) out[(long)j * outStride + i] = in[(long)i * inStride + j];
  }
}

// Planes (a, b) for first <= a < last and b < inner, each rows x cols; plane (a, b) starts at
// a * inOuter + b * inInner floats into `in` and at a * outOuter + b * outInner into `out`. Small
// planes (which stay in cache) go one by one. For large ones the 32 x 32 tiles are the outer loops
// and the planes the inner ones: a tile's 128-byte runs of input rows and of output rows are then
// used whole while they are in cache, even where a plane's rows are short and interleaved with
// other planes' (the Fourier ConvNorm's [2, Fw, Mh, C N] spectra).
EXPORT(transpose_planes)
void transpose_planes(const float* in, float* out, int rows, int cols, int inStride, int outStride, int inOuter,
                      int outOuter, int inner, int inInner, int outInner, int first, int last) {
  if ((long long)rows * cols <= 16384) {
    for (int a = first; a < last; a++) {
      for (int b = 0; b < inner; b++) {
        const float* from = in + (long)a * inOuter + (long)b * inInner;
        float* to = out + (long)a * outOuter + (long)b * outInner;
        for (int i0 = 0; i0 < rows; i0 += 32) {
          for (int j0 = 0; j0 < cols; j0 += 32) {
            transpose_tile(from, to, i0, i0 + 32 < rows ? i0 + 32 : rows, j0, j0 + 32 < cols ? j0 + 32 : cols,
                           inStride, outStride);
          }
        }
      }
    }
    return;
  }
  for (int i0 = 0; i0 < rows; i0 += 32) {
    int i1 = i0 + 32 < rows ? i0 + 32 : rows;
    for (int j0 = 0; j0 < cols; j0 += 32) {
      int j1 = j0 + 32 < cols ? j0 + 32 : cols;
      for (int a = first; a < last; a++) {
        for (int b = 0; b < inner; b++) {
          transpose_tile(in + (long)a * inOuter + (long)b * inInner, out + (long)a * outOuter + (long)b * outInner,
                         i0, i1, j0, j1, inStride, outStride);
        }
      }
    }
  }
}

// The geometry of a convolution's filter gradient (see conv_filter_gradient).
typedef struct {
  const float* x;
  const float* dy;
  int h, w, ci, ho, wo, co, sh, sw, top, left;
} FilterGradient;

// One tap (ta, tb) of a filter gradient, with the output rows and columns it reaches.
typedef struct {
  int ta, tb, pLo, pHi, qLo, qHi;
} Tap;

// Whether output row r (n ho + p) has the tap's row inside x, and if so (in *xr) where it reads x
// for input channel i at output column qLo. (Not a null pointer for "outside": address 0 is
// memory like any other in WebAssembly.)
static int tap_row(const FilterGradient* g, const Tap* tap, int r, int i, const float** xr) {
  int n = r / g->ho, p = r - n * g->ho;
  if (p < tap->pLo || p >= tap->pHi) return 0;
  *xr = g->x + ((long)(n * g->h + p * g->sh + tap->ta - g->top) * g->w + tap->qLo * g->sw + tap->tb - g->left) *
                 g->ci + i;
  return 1;
}

// dw[i, k] += the terms of output rows r0..r1-1 for output channels k = o..co-1, one at a time:
// the channels left over by the blocks of 8.
static void filter_columns(const FilterGradient* g, const Tap* tap, float* dw, int r0, int r1, int i, int o) {
  long xStep = (long)g->sw * g->ci;
  for (int k = o; k < g->co; k++) {
    float s = dw[(long)i * g->co + k];
    for (int r = r0; r < r1; r++) {
      const float* xr;
      if (!tap_row(g, tap, r, i, &xr)) continue;
      const float* dr = g->dy + ((long)r * g->wo + tap->qLo) * g->co + k;
      for (int q = tap->qLo; q < tap->qHi; q++, xr += xStep, dr += g->co) s += *xr * *dr;
    }
    dw[(long)i * g->co + k] = s;
  }
}

// dw[i0..i0+3, o..o+7] += the sums over output rows r0..r1-1 of one tap and four input channels,
// for every 8-column block of output channels: per output position, four broadcast values of x
// times two vectors of dy, in registers.
static void filter_block4(const FilterGradient* g, const Tap* tap, float* dw, int r0, int r1, int i0) {
  long xStep = (long)g->sw * g->ci;
  int o = 0;
  for (; o + 8 <= g->co; o += 8) {
    float* d0 = dw + (long)i0 * g->co + o;
    float* d1 = d0 + g->co;
    float* d2 = d1 + g->co;
    float* d3 = d2 + g->co;
    BLOCK4X8_ZERO;
    BLOCK4X8_LOAD(d0, d1, d2, d3);
    for (int r = r0; r < r1; r++) {
      const float* xr;
      if (!tap_row(g, tap, r, i0, &xr)) continue;
      const float* dr = g->dy + ((long)r * g->wo + tap->qLo) * g->co + o;
      for (int q = tap->qLo; q < tap->qHi; q++, xr += xStep, dr += g->co) {
        v128_t b0 = wasm_v128_load(dr), b1 = wasm_v128_load(dr + 4);
        BLOCK4X8_STEP(xr[0], xr[1], xr[2], xr[3], b0, b1);
      }
    }
    BLOCK4X8_STORE(d0, d1, d2, d3);
  }
  for (int i = i0; i < i0 + 4; i++) filter_columns(g, tap, dw, r0, r1, i, o);
}

// filter_block4 for one input channel i (the channels left over by the blocks of four).
static void filter_row(const FilterGradient* g, const Tap* tap, float* dw, int r0, int r1, int i) {
  long xStep = (long)g->sw * g->ci;
  int o = 0;
  for (; o + 8 <= g->co; o += 8) {
    float* d = dw + (long)i * g->co + o;
    v128_t c0 = wasm_v128_load(d), c1 = wasm_v128_load(d + 4);
    for (int r = r0; r < r1; r++) {
      const float* xr;
      if (!tap_row(g, tap, r, i, &xr)) continue;
      const float* dr = g->dy + ((long)r * g->wo + tap->qLo) * g->co + o;
      for (int q = tap->qLo; q < tap->qHi; q++, xr += xStep, dr += g->co) {
        v128_t x = wasm_f32x4_splat(*xr);
        c0 = MADD(c0, x, wasm_v128_load(dr));
        c1 = MADD(c1, x, wasm_v128_load(dr + 4));
      }
    }
    wasm_v128_store(d, c0);
    wasm_v128_store(d + 4, c1);
  }
  filter_columns(g, tap, dw, r0, r1, i, o);
}

// A convolution's filter gradient, dw[ta, tb, i, o] = sum over images n and the tap's valid
// outputs (p, q) of x[n, p sh + ta - top, q sw + tb - left, i] dy[n, p, q, o] (NHWC, unpadded
// x), for items first..last-1: item = tap * ceil(ci / 4) + i / 4, a tap's block of four input
// channels. The output rows (n, p) go by in chunks of `chunk` (sized by the caller so that a
// chunk of x and dy stays in cache while every item of the share sweeps it); each dw element
// sums its terms in the order (n, p, q) whatever the share, so helpers do not change results.
EXPORT(conv_filter_gradient)
void conv_filter_gradient(const float* x, const float* dy, float* dw, int n, int h, int w, int ci, int ho, int wo,
                          int co, int kh, int kw, int sh, int sw, int top, int left, int chunk, int first,
                          int last) {
  (void)kh;
  FilterGradient g = {x, dy, h, w, ci, ho, wo, co, sh, sw, top, left};
  int blocks = (ci + 3) / 4;
  for (int item = first; item < last; item++) {
    int i0 = (item % blocks) * 4, i1 = i0 + 4 < ci ? i0 + 4 : ci;
    float* d = dw + ((long)(item / blocks) * ci + i0) * co;
    for (long e = 0; e < (long)(i1 - i0) * co; e++) d[e] = 0;
  }
  for (int r0 = 0; r0 < n * ho; r0 += chunk) {
    int r1 = r0 + chunk < n * ho ? r0 + chunk : n * ho;
    for (int item = first; item < last; item++) {
      int t = item / blocks;
      int i0 = (item % blocks) * 4, i1 = i0 + 4 < ci ? i0 + 4 : ci;
      Tap tap = {t / kw, t % kw, 0, 0, 0, 0};
      valid_outputs(tap.ta, top, sh, h, ho, &tap.pLo, &tap.pHi);
      valid_outputs(tap.tb, left, sw, w, wo, &tap.qLo, &tap.qHi);
      if (tap.qLo >= tap.qHi) continue;
      float* d = dw + (long)t * ci * co;
      if (i1 - i0 == 4) {
        filter_block4(&g, &tap, d, r0, r1, i0);
      } else {
        for (int i = i0; i < i1; i++) filter_row(&g, &tap, d, r0, r1, i);
      }
    }
  }
}

// The geometry of a 'valid' convolution over an already padded x (see conv_forward).
typedef struct {
  const float* x;
  const float* f;
  float* y;
  int h, w, ci, ho, wo, co, kh, kw, sh, sw;
} Convolution;

// Where output position r (n ho wo + p wo + q) reads its window's first tap in x.
static const float* window(const Convolution* g, int r) {
  int q = r % g->wo, np = r / g->wo, p = np % g->ho, n = np / g->ho;
  return g->x + ((long)(n * g->h + p * g->sh) * g->w + (long)q * g->sw) * g->ci;
}

// y[r..r+3, o..o+7] (rows < 4: the first `rows`) plus the terms of tap (a, b): per input
// channel, four broadcast values of x times two vectors of the filter row, 4 x 8 sums in
// registers. The first tap starts from zero instead of y.
static void conv_block(const Convolution* g, int r, int rows, int o, int a, int b) {
  long offset = ((long)a * g->w + b) * g->ci;
  const float* a0 = window(g, r) + offset;
  const float* a1 = rows > 1 ? window(g, r + 1) + offset : a0;
  const float* a2 = rows > 2 ? window(g, r + 2) + offset : a0;
  const float* a3 = rows > 3 ? window(g, r + 3) + offset : a0;
  float* y = g->y + (long)r * g->co + o;
  float* y1 = rows > 1 ? y + g->co : y;
  float* y2 = rows > 2 ? y + 2L * g->co : y;
  float* y3 = rows > 3 ? y + 3L * g->co : y;
  BLOCK4X8_ZERO;
  if (a != 0 || b != 0) BLOCK4X8_LOAD(y, y1, y2, y3);
  const float* ft = g->f + ((long)(a * g->kw + b) * g->ci) * g->co + o;
  for (int i = 0; i < g->ci; i++, ft += g->co) {
    v128_t b0 = wasm_v128_load(ft), b1 = wasm_v128_load(ft + 4);
    BLOCK4X8_STEP(a0[i], a1[i], a2[i], a3[i], b0, b1);
  }
  // Rows past `rows` alias row 0, which the store writes last.
  BLOCK4X8_STORE(y, y1, y2, y3);
}

// y[r, o] for one output position and channel (output channels past the last block of 8).
static void conv_single(const Convolution* g, int r, int o) {
  const float* x0 = window(g, r);
  float s = 0;
  for (int a = 0; a < g->kh; a++) {
    for (int b = 0; b < g->kw; b++) {
      const float* xt = x0 + ((long)a * g->w + b) * g->ci;
      const float* ft = g->f + ((long)(a * g->kw + b) * g->ci) * g->co + o;
      for (int i = 0; i < g->ci; i++) s += xt[i] * ft[(long)i * g->co];
    }
  }
  g->y[(long)r * g->co + o] = s;
}

// A 'valid' convolution y[n, p, q, o] = sum over taps (a, b) and input channels i of
// x[n, p sh + a, q sw + b, i] f[a, b, i, o] (NHWC; x padded by the caller), as a product of the
// implicit window matrix (one row per output position) with the filter: output positions
// first * 64 .. last * 64 - 1 of `positions`, in blocks of 64. Per block the taps go one at a
// time (each output's terms in the order tap row, tap column, input channel), so that the
// filter's strip of 8 output channels for one tap (ci rows) stays in L1 while the block's
// quads of positions sweep it: whole-window strips (9 ci rows) fell out of L1 at 512 channels.
EXPORT(conv_forward)
void conv_forward(const float* x, const float* f, float* y, int h, int w, int ci, int ho, int wo, int co, int kh,
                  int kw, int sh, int sw, int positions, int first, int last) {
  Convolution g = {x, f, y, h, w, ci, ho, wo, co, kh, kw, sh, sw};
  int end = last * 64 < positions ? last * 64 : positions;
  for (int r0 = first * 64; r0 < end; r0 += 64) {
    int r1 = r0 + 64 < end ? r0 + 64 : end;
    int blocked = co - co % 8;
    for (int a = 0; a < kh; a++) {
      for (int b = 0; b < kw; b++) {
        for (int o = 0; o < blocked; o += 8) {
          for (int r = r0; r < r1; r += 4) conv_block(&g, r, r1 - r < 4 ? r1 - r : 4, o, a, b);
        }
      }
    }
    for (int o = blocked; o < co; o++) {
      for (int r = r0; r < r1; r++) conv_single(&g, r, o);
    }
  }
}

// c[i, j0..j0+7] for rows i0..i1-1 (see gemm): per t, four broadcast values of a times two
// vectors of a row of b, 4 x 8 accumulators in registers.
#define INLINE static inline __attribute__((always_inline))

INLINE void gemm_strip8(const float* a, const float* b, float* c, int i0, int i1, int j, int k, int ars, int acs,
                        int ldb, int ldc) {
  int i = i0;
  for (; i + 4 <= i1; i += 4) {
    const float* a0 = a + (long)i * ars;
    const float* a1 = a0 + ars;
    const float* a2 = a1 + ars;
    const float* a3 = a2 + ars;
    BLOCK4X8_ZERO;
    const float* bt = b + j;
    for (int t = 0; t < k; t++, bt += ldb) {
      v128_t b0 = wasm_v128_load(bt), b1 = wasm_v128_load(bt + 4);
      long at = (long)t * acs;
      BLOCK4X8_STEP(a0[at], a1[at], a2[at], a3[at], b0, b1);
    }
    float* ci = c + (long)i * ldc + j;
    BLOCK4X8_STORE(ci, ci + ldc, ci + 2L * ldc, ci + 3L * ldc);
  }
  for (; i < i1; i++) {
    const float* ai = a + (long)i * ars;
    v128_t c0 = wasm_f32x4_splat(0), c1 = c0;
    const float* bt = b + j;
    for (int t = 0; t < k; t++, bt += ldb) {
      v128_t x = wasm_f32x4_splat(ai[(long)t * acs]);
      c0 = MADD(c0, x, wasm_v128_load(bt));
      c1 = MADD(c1, x, wasm_v128_load(bt + 4));
    }
    wasm_v128_store(c + (long)i * ldc + j, c0);
    wasm_v128_store(c + (long)i * ldc + j + 4, c1);
  }
}

// c[i, j0..j0+3] for rows i0..i1-1: the 4-column strip left over by the 8-column ones.
INLINE void gemm_strip4(const float* a, const float* b, float* c, int i0, int i1, int j, int k, int ars, int acs,
                        int ldb, int ldc) {
  for (int i = i0; i < i1; i++) {
    const float* ai = a + (long)i * ars;
    v128_t c0 = wasm_f32x4_splat(0);
    const float* bt = b + j;
    for (int t = 0; t < k; t++, bt += ldb) c0 = MADD(c0, wasm_f32x4_splat(ai[(long)t * acs]), wasm_v128_load(bt));
    wasm_v128_store(c + (long)i * ldc + j, c0);
  }
}

#define FEW_ROWS 32

// c[i..i+1, j..j+15] (rows < i1): per t, two broadcast values of a times four vectors of a row
// of b, one whole cache line. For few-row products with wide b, whose rows lie far apart: the
// 4 x 8 blocks would use half of every line they fetch.
INLINE void gemm_wide16(const float* a, const float* b, float* c, int i0, int i1, int j, int k, int ars, int acs,
                        int ldb, int ldc) {
  int i = i0;
  for (; i + 2 <= i1; i += 2) {
    const float* a0 = a + (long)i * ars;
    const float* a1 = a0 + ars;
    v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    const float* bt = b + j;
    for (int t = 0; t < k; t++, bt += ldb) {
      v128_t b0 = wasm_v128_load(bt), b1 = wasm_v128_load(bt + 4), b2 = wasm_v128_load(bt + 8),
             b3 = wasm_v128_load(bt + 12);
      v128_t x = wasm_f32x4_splat(a0[(long)t * acs]);
      c00 = MADD(c00, x, b0);
      c01 = MADD(c01, x, b1);
      c02 = MADD(c02, x, b2);
      c03 = MADD(c03, x, b3);
      x = wasm_f32x4_splat(a1[(long)t * acs]);
      c10 = MADD(c10, x, b0);
      c11 = MADD(c11, x, b1);
      c12 = MADD(c12, x, b2);
      c13 = MADD(c13, x, b3);
    }
    float* ci = c + (long)i * ldc + j;
    wasm_v128_store(ci, c00);
    wasm_v128_store(ci + 4, c01);
    wasm_v128_store(ci + 8, c02);
    wasm_v128_store(ci + 12, c03);
    wasm_v128_store(ci + ldc, c10);
    wasm_v128_store(ci + ldc + 4, c11);
    wasm_v128_store(ci + ldc + 8, c12);
    wasm_v128_store(ci + ldc + 12, c13);
  }
  if (i < i1) {
    gemm_strip8(a, b, c, i, i1, j, k, ars, acs, ldb, ldc);
    gemm_strip8(a, b, c, i, i1, j + 8, k, ars, acs, ldb, ldc);
  }
}

// c[i, j] = sum_t a[i, t] b[t, j] for an m x k by k x n product: a[i, t] at a + i ars + t acs
// (ars = k, acs = 1 row-major; ars = 1, acs = m for a stored transposed, as [k, m]), b and c
// row-major with leading dimensions ldb and ldc. No packing: per block of 64 rows of a (kept in
// cache), b is swept in strips of 8 columns (k x 32 bytes, in L1 while the row blocks pass over
// it). The sums run over t in order, as XNNPACK's do, and give its results when built without
// fused multiply-adds. Inlined into gemm twice, so that a row-major a gets a constant stride.
INLINE void gemm_blocks(const float* a, const float* b, float* c, int m, int k, int n, int ars, int acs, int ldb,
                        int ldc) {
  for (int i0 = 0; i0 < m; i0 += 64) {
    int i1 = i0 + 64 < m ? i0 + 64 : m;
    int j = 0;
    if (m < FEW_ROWS) {
      for (; j + 16 <= n; j += 16) gemm_wide16(a, b, c, i0, i1, j, k, ars, acs, ldb, ldc);
    }
    for (; j + 8 <= n; j += 8) gemm_strip8(a, b, c, i0, i1, j, k, ars, acs, ldb, ldc);
    for (; j + 4 <= n; j += 4) gemm_strip4(a, b, c, i0, i1, j, k, ars, acs, ldb, ldc);
    for (; j < n; j++) {
      for (int i = i0; i < i1; i++) {
        float s = 0;
        for (int t = 0; t < k; t++) s += a[(long)i * ars + (long)t * acs] * b[(long)t * ldb + j];
        c[(long)i * ldc + j] = s;
      }
    }
  }
}

// A panel of packed b: 96 KB, which stays in L2 while the row blocks of a sweep it.
#define PANEL_FLOATS 24576
// Fewer rows than this go unpacked (gemm_wide16's whole-line blocks): packing b costs about
// what a product with so few rows gains from it.
#define PACK_MIN_ROWS FEW_ROWS

// Columns j0..j0+cols-1 of b (k rows, leading dimension ldb) as strips of 8 columns, strip s
// k x 8 contiguous at p + 8 k s, the last strip's missing columns zero. Row by row, so b is read
// in long runs; the strided reads of an unpacked strip (k rows far apart, one stream each) are
// what held the DFT-shaped products (tens of rows by tens of thousands of columns) to 35 % of
// the peak.
static void pack_panel(const float* b, float* p, int k, int cols, int ldb) {
  int full = cols / 8;
  for (int t = 0; t < k; t++) {
    const float* row = b + (long)t * ldb;
    float* d = p + (long)t * 8;
    for (int s = 0; s < full; s++, d += 8L * k) {
      wasm_v128_store(d, wasm_v128_load(row + 8 * s));
      wasm_v128_store(d + 4, wasm_v128_load(row + 8 * s + 4));
    }
    if (full * 8 < cols) {
      for (int q = 0; q < 8; q++) d[q] = full * 8 + q < cols ? row[full * 8 + q] : 0.0f;
    }
  }
}

// y[0..w-1] = the first w (< 8) of the 8 values lo, hi.
INLINE void store_partial(float* y, v128_t lo, v128_t hi, int w) {
  if (w >= 4) {
    wasm_v128_store(y, lo);
    lo = hi;
    y += 4;
    w -= 4;
  }
  if (w >= 2) {
    wasm_v128_store64_lane(y, lo, 0);
    lo = wasm_i64x2_shuffle(lo, lo, 1, 1);
    y += 2;
    w -= 2;
  }
  if (w >= 1) wasm_v128_store32_lane(y, lo, 0);
}

// c[i..i+rows-1, 0..w-1] (rows <= 4, w <= 8) = those rows of a times one packed strip bp (k x 8):
// the 4 x 8 register block, with b's two vectors per step read in sequence.
INLINE void packed_block(const float* a, const float* bp, float* c, int i, int rows, int w, int k, int ars, int acs,
                         int ldc) {
  const float* a0 = a + (long)i * ars;
  const float* a1 = rows > 1 ? a0 + ars : a0;
  const float* a2 = rows > 2 ? a0 + 2L * ars : a0;
  const float* a3 = rows > 3 ? a0 + 3L * ars : a0;
  BLOCK4X8_ZERO;
  for (int t = 0; t < k; t++, bp += 8) {
    v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
    long at = (long)t * acs;
    BLOCK4X8_STEP(a0[at], a1[at], a2[at], a3[at], b0, b1);
  }
  float* y0 = c + (long)i * ldc;
  if (w == 8) {
    // Rows past `rows` alias row 0, which the store writes last.
    float* y1 = rows > 1 ? y0 + ldc : y0;
    float* y2 = rows > 2 ? y0 + 2L * ldc : y0;
    float* y3 = rows > 3 ? y0 + 3L * ldc : y0;
    BLOCK4X8_STORE(y0, y1, y2, y3);
    return;
  }
  store_partial(y0, c00, c01, w);
  if (rows > 1) store_partial(y0 + ldc, c10, c11, w);
  if (rows > 2) store_partial(y0 + 2L * ldc, c20, c21, w);
  if (rows > 3) store_partial(y0 + 3L * ldc, c30, c31, w);
}

// gemm with b packed a panel at a time into `pack` (PANEL_FLOATS or 8 k floats, whichever is more):
// per panel, per block of 64 rows of a, every strip of the panel against the block's quads of rows.
INLINE void gemm_packed(const float* a, const float* b, float* c, int m, int k, int n, int ars, int acs, int ldb,
                        int ldc, float* pack) {
  int panel = PANEL_FLOATS / k / 8 * 8;
  if (panel < 8) panel = 8;
  for (int j0 = 0; j0 < n; j0 += panel) {
    int cols = j0 + panel < n ? panel : n - j0;
    pack_panel(b + j0, pack, k, cols, ldb);
    int strips = (cols + 7) / 8;
    for (int i0 = 0; i0 < m; i0 += 64) {
      int i1 = i0 + 64 < m ? i0 + 64 : m;
      for (int s = 0; s < strips; s++) {
        int w = cols - 8 * s < 8 ? cols - 8 * s : 8;
        const float* bp = pack + 8L * k * s;
        float* cs = c + j0 + 8 * s;
        for (int i = i0; i < i1; i += 4) packed_block(a, bp, cs, i, i1 - i < 4 ? i1 - i : 4, w, k, ars, acs, ldc);
      }
    }
  }
}

// The product: packed (gemm_packed) when a has PACK_MIN_ROWS rows or more and the caller gave
// scratch for it, unpacked (gemm_blocks) otherwise; each specialised for a row-major a (a
// constant unit stride along its rows) and for any other.
static void gemm(const float* a, const float* b, float* c, int m, int k, int n, int ars, int acs, int ldb, int ldc,
                 float* pack) {
  if (m >= PACK_MIN_ROWS && pack != 0 && k > 0) {
    if (acs == 1) {
      gemm_packed(a, b, c, m, k, n, ars, 1, ldb, ldc, pack);
    } else {
      gemm_packed(a, b, c, m, k, n, ars, acs, ldb, ldc, pack);
    }
  } else if (acs == 1) {
    gemm_blocks(a, b, c, m, k, n, ars, 1, ldb, ldc);
  } else {
    gemm_blocks(a, b, c, m, k, n, ars, acs, ldb, ldc);
  }
}

// The floats of scratch gemm packs b into for an m x k left operand (0: it runs unpacked).
EXPORT(gemm_pack_floats)
int gemm_pack_floats(int m, int k) {
  if (m < PACK_MIN_ROWS || k <= 0) return 0;
  return 8 * k > PANEL_FLOATS ? 8 * k : PANEL_FLOATS;
}

// Entries first..last-1 of a batch of products c_e = a_e b_e (see gemm), each contiguous; a_e
// starts e * strideA floats into `a` (0: one a for all) and is stored as [k, m] when transposeA,
// b_e e * strideB into `b`, c_e e m n. `pack`: this share's scratch for gemm (0: none).
EXPORT(gemm_batch)
void gemm_batch(const float* a, const float* b, float* c, int m, int k, int n, int strideA, int strideB,
                int transposeA, float* pack, int first, int last) {
  for (int e = first; e < last; e++) {
    gemm(a + (long)e * strideA, b + (long)e * strideB, c + (long)e * m * n, m, k, n, transposeA ? 1 : k,
         transposeA ? m : 1, n, n, pack);
  }
}

// Rows first..last-1 of one product c = a b (contiguous): the share of a thread when b has few columns.
EXPORT(gemm_rows)
void gemm_rows(const float* a, const float* b, float* c, int m, int k, int n, int transposeA, float* pack, int first,
               int last) {
  int ars = transposeA ? 1 : k;
  gemm(a + (long)first * ars, b, c + (long)first * n, last - first, k, n, ars, transposeA ? m : 1, n, n, pack);
}

// Column blocks first..last-1 (8 columns each, the last one short) of one product c = a b: the
// share of a thread when b has many columns.
EXPORT(gemm_columns)
void gemm_columns(const float* a, const float* b, float* c, int m, int k, int n, int transposeA, float* pack,
                  int first, int last) {
  int from = first * 8, to = last * 8 < n ? last * 8 : n;
  gemm(a, b + from, c + from, m, k, to - from, transposeA ? 1 : k, transposeA ? m : 1, n, n, pack);
}

// The Fourier ConvNorm's trip from maps to spectra, image by image (images first..last-1):
// out[r, m, i, k] = sum over (q, w) of byW[r, (q, w)] sum over h of byH[(m, q), h] x[i, h, w, k],
// for x [n, h, w, c] (NHWC), byH [2 mh, h] with rows (mh, part), byW [rows, 2 w] with columns
// (part, w) and the block form of a complex matrix (its imaginary-input columns are the real
// ones rotated: [[A, -B], [B, A]], as every DFT and adjoint the layer passes is), out [rows, mh,
// n, c] with rows (part, fw), fw = rows / 2. Both stages are complex-linear along their own
// axis, so they commute, and the width goes first: on the real map it needs only byW's
// real-input columns and gives the half spectrum, fw complex columns instead of w, before the
// full-length transform along the height. That is h w rows + 4 fw mh h multiply-adds per
// channel where height-first took 2 mh h w + 4 fw mh w: 115K against 148K for a 32 x 32 map on
// its 34 x 34 grid. Per image: per map row y, [rows, w] by its [w, c] into `s` [(fw, part), h,
// c]; then per fw, the complex transform along the height as two real products (real and
// imaginary output parts, [mh, 2 h] each) of its [2 h, c] block straight into `out`.
// `scratch`: the two stages' matrices (rows w + 4 mh h floats), `s` (rows h c), then gemm's
// packing scratch. For maps of 8 channels or more (its products are c columns wide; fewer go
// to image_to_spectrum_few_channels).
EXPORT(image_to_spectrum)
void image_to_spectrum(const float* x, const float* byH, const float* byW, float* out, int n, int h, int w, int c,
                       int mh, int rows, float* scratch, int first, int last) {
  int fw = rows / 2;
  float* alongW = scratch;                    // [rows, w], rows (fw, part)
  float* alongH = alongW + (long)rows * w;    // [2, mh, 2 h]: the real output part, then the imaginary
  float* s = alongH + 4L * mh * h;
  float* pack = s + (long)rows * h * c;
  // The setup loops stay scalar: vectorized, they took a stack frame, which the module may not have.
  for (int q = 0; q < fw; q++) {
    for (int part = 0; part < 2; part++) {
#pragma clang loop vectorize(disable)
      for (int t = 0; t < w; t++) alongW[(2L * q + part) * w + t] = byW[((long)part * fw + q) * 2 * w + t];
    }
  }
  for (int m = 0; m < mh; m++) {
    float* re = alongH + 2L * m * h;
    float* im = alongH + 2L * (mh + m) * h;
#pragma clang loop vectorize(disable)
    for (int y = 0; y < h; y++) {
      float pr = byH[2L * m * h + y], pi = byH[(2L * m + 1) * h + y];
      re[y] = pr;
      re[h + y] = -pi;
      im[y] = pi;
      im[h + y] = pr;
    }
  }
  for (int i = first; i < last; i++) {
    const float* xi = x + (long)i * h * w * c;
    for (int y = 0; y < h; y++) {
      gemm(alongW, xi + (long)y * w * c, s + (long)y * c, rows, w, c, w, 1, c, h * c, pack);
    }
    for (int q = 0; q < fw; q++) {
      for (int part = 0; part < 2; part++) {
        gemm(alongH + 2L * part * mh * h, s + 2L * q * h * c, out + ((((long)part * fw + q) * mh) * n + i) * c,
             mh, 2 * h, c, 2 * h, 1, c, n * c, pack);
      }
    }
  }
}

// The reverse trip, image by image (images first..last-1): out[i, y, v, k] = sum over (m, q) of
// byH[y, (m, q)] sum over r of byW[(q, v), r] z[r, m, i, k], for z [rows, mh, n, c] with rows
// (part, fw), byW [2 w, rows] with rows (part, w) in the block form of a complex matrix (as in
// image_to_spectrum), byH [h, 2 mh] with columns (mh, part), out [n, h, w, c]. byH takes the
// real part of a complex product, Re((Qa - i Qb) u) for its columns Qa and Qb, so the two
// stages commute here too and the height goes first, on fw complex columns; the width then
// needs only the real part, byW's first w rows, on the half spectrum: the same multiply-adds as
// image_to_spectrum's. Per image: per fw, the image's [2 mh, c] block of z gathered (its real
// and imaginary rows lie apart) and transformed along the height, [2 h, 2 mh] by it, into `s`
// [(fw, part), h, c]; then per map row y, [w, rows] by its [rows, c] column of `s`. `scratch`:
// the two stages' matrices (4 h mh + w rows floats), the gathered block (2 mh c), `s` (rows h
// c), then gemm's packing scratch. For maps of 8 channels or more, as image_to_spectrum.
EXPORT(spectrum_to_image)
void spectrum_to_image(const float* z, const float* byW, const float* byH, float* out, int n, int h, int w, int c,
                       int mh, int rows, float* scratch, int first, int last) {
  int fw = rows / 2;
  float* alongH = scratch;                    // [2 h, 2 mh], rows (part, y), columns (part, m)
  float* alongW = alongH + 4L * h * mh;       // [w, rows], columns (fw, part)
  float* block = alongW + (long)w * rows;     // [2 mh, c], rows (part, m)
  float* s = block + 2L * mh * c;
  float* pack = s + (long)rows * h * c;
  for (int y = 0; y < h; y++) {
    float* re = alongH + 2L * y * mh;
    float* im = alongH + 2L * (h + y) * mh;
    for (int m = 0; m < mh; m++) {
      float qa = byH[2L * y * mh + 2 * m], qb = byH[2L * y * mh + 2 * m + 1];
      re[m] = qa;
      re[mh + m] = qb;
      im[m] = -qb;
      im[mh + m] = qa;
    }
  }
  for (int v = 0; v < w; v++) {
    for (int q = 0; q < fw; q++) {
      for (int part = 0; part < 2; part++) alongW[(long)v * rows + 2 * q + part] = byW[(long)v * rows + part * fw + q];
    }
  }
  for (int i = first; i < last; i++) {
    for (int q = 0; q < fw; q++) {
      for (int part = 0; part < 2; part++) {
        for (int m = 0; m < mh; m++) {
          copy_floats(block + ((long)part * mh + m) * c, z + ((((long)part * fw + q) * mh + m) * n + i) * c, c);
        }
      }
      gemm(alongH, block, s + 2L * q * h * c, 2 * h, 2 * mh, c, 2 * mh, 1, c, c, pack);
    }
    float* oi = out + (long)i * h * w * c;
    for (int y = 0; y < h; y++) {
      gemm(alongW, s + (long)y * c, oi + (long)y * w * c, w, rows, c, rows, 1, h * c, c, pack);
    }
  }
}

// image_to_spectrum for maps of fewer than 8 channels (the first layer's 3), height first: per
// image, the transform along the height is one product (its [h, w c] map as the right operand,
// read in place, w c columns wide where width-first products would be c, less than one SIMD
// strip) into `scratch` [2 mh, w c], whose [2 w, c] block per m is the right operand of the
// transform along the width. `scratch`: 2 mh w c floats, then gemm's packing scratch for the
// larger of the two left operands.
EXPORT(image_to_spectrum_few_channels)
void image_to_spectrum_few_channels(const float* x, const float* byH, const float* byW, float* out, int n, int h,
                                    int w, int c, int mh, int rows, float* scratch, int first, int last) {
  float* pack = scratch + 2L * mh * w * c;
  for (int i = first; i < last; i++) {
    gemm(byH, x + (long)i * h * w * c, scratch, 2 * mh, h, w * c, h, 1, w * c, w * c, pack);
    for (int m = 0; m < mh; m++) {
      gemm(byW, scratch + 2L * m * w * c, out + ((long)m * n + i) * c, rows, 2 * w, c, 2 * w, 1, c, mh * n * c,
           pack);
    }
  }
}

// spectrum_to_image for maps of fewer than 8 channels, width first: per image and m, the
// transform along the width reads the image's [rows, c] block of z (stride mh n c) into
// `scratch` [mh, 2 w, c]; the transform along the height is then one product, w c columns wide,
// into the image's map. `scratch`: 2 mh w c floats, then gemm's packing scratch.
EXPORT(spectrum_to_image_few_channels)
void spectrum_to_image_few_channels(const float* z, const float* byW, const float* byH, float* out, int n, int h,
                                    int w, int c, int mh, int rows, float* scratch, int first, int last) {
  float* pack = scratch + 2L * mh * w * c;
  for (int i = first; i < last; i++) {
    for (int m = 0; m < mh; m++) {
      gemm(byW, z + ((long)m * n + i) * c, scratch + 2L * m * w * c, 2 * w, rows, c, rows, 1, mh * n * c, c, pack);
    }
    gemm(byH, scratch, out + (long)i * h * w * c, h, 2 * mh, w * c, 2 * mh, 1, w * c, w * c, pack);
  }
}

// The three Gauss parts of one frequency's kernel spectrum from the taps [ntaps, count]:
// with K = sum_t taps[t] (cos[t] + i sign sin[t]), a = Re K, b = Im K - Re K, c = Re K + Im K.
static void kernel_parts(const float* taps, const float* cosf, const float* sinf, int ntaps, int sign, long count,
                         float* a, float* b, float* c) {
  long e = 0;
  for (; e + 4 <= count; e += 4) {
    v128_t re = wasm_f32x4_splat(0), im = re;
    for (int t = 0; t < ntaps; t++) {
      v128_t w = wasm_v128_load(taps + (long)t * count + e);
      re = MADD(re, wasm_f32x4_splat(cosf[t]), w);
      im = MADD(im, wasm_f32x4_splat(sinf[t]), w);
    }
    if (sign < 0) im = wasm_f32x4_neg(im);
    wasm_v128_store(a + e, re);
    wasm_v128_store(b + e, wasm_f32x4_sub(im, re));
    wasm_v128_store(c + e, wasm_f32x4_add(re, im));
  }
  for (; e < count; e++) {
    float re = 0, im = 0;
    for (int t = 0; t < ntaps; t++) {
      re += cosf[t] * taps[(long)t * count + e];
      im += sinf[t] * taps[(long)t * count + e];
    }
    if (sign < 0) im = -im;
    a[e] = re;
    b[e] = im - re;
    c[e] = re + im;
  }
}

// y[r, k] = x[r, k] * s[k] over rows x cols.
static void scale_columns(const float* x, const float* s, float* y, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    for (int k = 0; k < cols; k++) y[(long)r * cols + k] = x[(long)r * cols + k] * s[k];
  }
}

// The Fourier ConvNorm's per-frequency product for frequencies first..last-1:
// Z_f = X_f K_f diag(v_f) (scaleInput 0) or Z_f = X_f diag(v_f) K_f (scaleInput 1), for
// complex X [2, freqs, n, rows] (real parts, then imaginary), K_f [rows, cols] made here from the
// taps [ntaps, rows cols] and the basis cos, sin [freqs, ntaps] (kernel_parts), v [freqs, scaled
// channels], Z [2, freqs, n, cols]: three real products (Gauss), the parts' sums and differences
// in cache. As tf ops every step was a pass over the whole batch (slices of the stacked parts,
// the sums, the stacking, the scaling) and the kernel spectrum, freqs x rows x cols three times
// over, went to memory and back. `scratch`: 3 rows cols + n rows + n cols + 2 n rows floats,
// then gemm's packing scratch.
EXPORT(spectral_product)
void spectral_product(const float* x, const float* taps, const float* cosb, const float* sinb, const float* v,
                      float* z, int freqs, int n, int rows, int cols, int ntaps, int sign, int scaleInput,
                      float* scratch, int first, int last) {
  long kc = (long)rows * cols;
  float* a = scratch;
  float* b = a + kc;
  float* c = b + kc;
  float* sum = c + kc;
  float* tmp = sum + (long)n * rows;
  float* scaled = tmp + (long)n * cols;
  float* pack = scaled + 2L * n * rows;
  for (int f = first; f < last; f++) {
    kernel_parts(taps, cosb + (long)f * ntaps, sinb + (long)f * ntaps, ntaps, sign, kc, a, b, c);
    const float* xr = x + (long)f * n * rows;
    const float* xi = x + ((long)freqs + f) * n * rows;
    if (scaleInput) {
      scale_columns(xr, v + (long)f * rows, scaled, n, rows);
      scale_columns(xi, v + (long)f * rows, scaled + (long)n * rows, n, rows);
      xr = scaled;
      xi = scaled + (long)n * rows;
    }
    for (long e = 0; e < (long)n * rows; e++) sum[e] = xr[e] + xi[e];
    float* zr = z + (long)f * n * cols;
    float* zi = z + ((long)freqs + f) * n * cols;
    gemm(sum, a, zr, n, rows, cols, rows, 1, cols, cols, pack);
    gemm(xr, b, zi, n, rows, cols, rows, 1, cols, cols, pack);
    gemm(xi, c, tmp, n, rows, cols, rows, 1, cols, cols, pack);
    const float* vf = v + (long)f * cols;
    for (int r = 0; r < n; r++) {
      for (int k = 0; k < cols; k++) {
        long e = (long)r * cols + k;
        float re = zr[e] - tmp[e], im = zr[e] + zi[e];
        if (!scaleInput) {
          re *= vf[k];
          im *= vf[k];
        }
        zr[e] = re;
        zi[e] = im;
      }
    }
  }
}

// The taps' gradient of the per-frequency product, for items first..last-1, each a block of `block`
// input channels (the last one short):
// out[t, i, k] = sum over frequencies f of cos[f, t] Re G_f[i, k] + sin[f, t] Im G_f[i, k],
// G_f = X_f^H D_f diag(v_f), for X [2, freqs, n, rows], D [2, freqs, n, cols] (the output
// spectrum's gradient), v [freqs, cols]: per frequency three real products (Gauss) with X_f read
// transposed in place, the frequencies summed in order whatever the share. `scratch`: n rows +
// 3 n cols + 3 block cols floats, then gemm's packing scratch.
EXPORT(spectral_tap_gradient)
void spectral_tap_gradient(const float* x, const float* d, const float* cosb, const float* sinb, const float* v,
                           float* out, int freqs, int n, int rows, int cols, int ntaps, int block, float* scratch,
                           int first, int last) {
  float* diff = scratch;
  float* dre = diff + (long)n * rows;
  float* q = dre + (long)n * cols;
  float* r = q + (long)n * cols;
  float* k1 = r + (long)n * cols;
  float* k2 = k1 + (long)block * cols;
  float* k3 = k2 + (long)block * cols;
  float* pack = k3 + (long)block * cols;
  int lo = first * block, hi = last * block < rows ? last * block : rows;
  for (int t = 0; t < ntaps; t++) {
    for (int i = lo; i < hi; i++) {
      for (int k = 0; k < cols; k++) out[((long)t * rows + i) * cols + k] = 0;
    }
  }
  for (int f = 0; f < freqs; f++) {
    const float* xr = x + (long)f * n * rows;
    const float* xi = x + ((long)freqs + f) * n * rows;
    const float* dr = d + (long)f * n * cols;
    const float* di = d + ((long)freqs + f) * n * cols;
    const float* vf = v + (long)f * cols;
    for (int p = 0; p < n; p++) {
      for (int i = lo; i < hi; i++) diff[(long)p * rows + i] = xr[(long)p * rows + i] - xi[(long)p * rows + i];
      for (int k = 0; k < cols; k++) {
        long e = (long)p * cols + k;
        float re = dr[e] * vf[k], im = di[e] * vf[k];
        dre[e] = re;
        q[e] = im - re;
        r[e] = re + im;
      }
    }
    const float* cf = cosb + (long)f * ntaps;
    const float* sf = sinb + (long)f * ntaps;
    for (int i0 = lo; i0 < hi; i0 += block) {
      int span = i0 + block < hi ? block : hi - i0;
      // conj(A) B for A = X_f^T = a + ib, B = D_f diag(v_f) = c + id: (a - ib)(c + id) =
      // (ac + bd) + i(ad - bc) = (k1 + k3) + i(k1 + k2), k1 = (a - b) c, k2 = a (d - c), k3 = b (c + d).
      gemm(diff + i0, dre, k1, span, n, cols, 1, rows, cols, cols, pack);
      gemm(xr + i0, q, k2, span, n, cols, 1, rows, cols, cols, pack);
      gemm(xi + i0, r, k3, span, n, cols, 1, rows, cols, cols, pack);
      long count = (long)span * cols;
      for (long e = 0; e < count; e++) {
        float re = k1[e] + k3[e], im = k1[e] + k2[e];
        k1[e] = re;
        k2[e] = im;
      }
      // Tap by tap, so each pass runs along contiguous rows of the output.
      for (int t = 0; t < ntaps; t++) {
        float* o = out + ((long)t * rows + i0) * cols;
        float ct = cf[t], st = sf[t];
        for (long e = 0; e < count; e++) o[e] += ct * k1[e] + st * k2[e];
      }
    }
  }
}

// The preconditioning spectrum V for frequencies first..last-1: v[f, k] = (sum over j of
// |K_f[j, k]|^2 + epsilon)^(-1/2), K_f = sum_t taps[t] (cos[f, t] + i sin[f, t]), for taps
// [ntaps, rows cols] (row j, column k), v [freqs, cols]. As tf ops the kernel spectrum's two parts,
// their squares and their sum were each freqs x rows x cols in memory, a pass apiece; here one
// frequency's row of K at a time lives in registers. `power`: cols floats of scratch.
EXPORT(preconditioning_spectrum)
void preconditioning_spectrum(const float* taps, const float* cosb, const float* sinb, float* v, int rows,
                              int cols, int ntaps, int epsilonBits, float* power, int first, int last) {
  // epsilon comes as its bits: the helpers' arguments are 32-bit integers.
  union {
    int bits;
    float value;
  } epsilon = {epsilonBits};
  long count = (long)rows * cols;
  for (int f = first; f < last; f++) {
    const float* cf = cosb + (long)f * ntaps;
    const float* sf = sinb + (long)f * ntaps;
    for (int k = 0; k < cols; k++) power[k] = 0;
    for (int j = 0; j < rows; j++) {
      const float* row = taps + (long)j * cols;
      int k = 0;
      for (; k + 4 <= cols; k += 4) {
        v128_t re = wasm_f32x4_splat(0), im = re;
        for (int t = 0; t < ntaps; t++) {
          v128_t w = wasm_v128_load(row + (long)t * count + k);
          re = MADD(re, wasm_f32x4_splat(cf[t]), w);
          im = MADD(im, wasm_f32x4_splat(sf[t]), w);
        }
        v128_t p = wasm_v128_load(power + k);
        p = MADD(p, re, re);
        wasm_v128_store(power + k, MADD(p, im, im));
      }
      for (; k < cols; k++) {
        float re = 0, im = 0;
        for (int t = 0; t < ntaps; t++) {
          re += cf[t] * row[(long)t * count + k];
          im += sf[t] * row[(long)t * count + k];
        }
        power[k] += re * re + im * im;
      }
    }
    float* vf = v + (long)f * cols;
    for (int k = 0; k < cols; k++) vf[k] = 1.0f / __builtin_sqrtf(power[k] + epsilon.value);
  }
}

// out[i] = a[i] + b[i] (op 0), a[i] - b[i] (op 1) or a[i] * b[i] (op 2) for i in first..last-1.
EXPORT(elementwise)
void elementwise(int op, const float* a, const float* b, float* out, int first, int last) {
  if (op == 0) {
    for (int i = first; i < last; i++) out[i] = a[i] + b[i];
  } else if (op == 1) {
    for (int i = first; i < last; i++) out[i] = a[i] - b[i];
  } else {
    for (int i = first; i < last; i++) out[i] = a[i] * b[i];
  }
}
