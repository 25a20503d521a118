// The multiply-add throughput of WebAssembly SIMD on this machine, for `npm run bench`:
// twelve independent chains acc = acc * x + y, as separate multiplies and adds or as relaxed
// SIMD's fused multiply-add, enough chains in flight that latency does not bound them.
// Built by scripts/build-simd.mjs into bench/peak_wasm.ts.

#include <wasm_simd128.h>

#ifdef FUSED_MULTIPLY_ADD
#define STEP(acc) acc = __builtin_wasm_relaxed_madd_f32x4(acc, x, y)
#else
#define STEP(acc) acc = wasm_f32x4_add(wasm_f32x4_mul(acc, x), y)
#endif

// n steps of every chain: 12 x 4 x 2 n floating-point operations.
__attribute__((export_name("peak"))) float peak(int n, float seed) {
  v128_t x = wasm_f32x4_splat(0.999999f), y = wasm_f32x4_splat(1e-7f);
  v128_t a0 = wasm_f32x4_splat(seed), a1 = wasm_f32x4_splat(seed + 1), a2 = wasm_f32x4_splat(seed + 2),
         a3 = wasm_f32x4_splat(seed + 3), a4 = wasm_f32x4_splat(seed + 4), a5 = wasm_f32x4_splat(seed + 5),
         a6 = wasm_f32x4_splat(seed + 6), a7 = wasm_f32x4_splat(seed + 7), a8 = wasm_f32x4_splat(seed + 8),
         a9 = wasm_f32x4_splat(seed + 9), a10 = wasm_f32x4_splat(seed + 10), a11 = wasm_f32x4_splat(seed + 11);
  for (int i = 0; i < n; i++) {
    STEP(a0);
    STEP(a1);
    STEP(a2);
    STEP(a3);
    STEP(a4);
    STEP(a5);
    STEP(a6);
    STEP(a7);
    STEP(a8);
    STEP(a9);
    STEP(a10);
    STEP(a11);
  }
  v128_t s = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)),
                            wasm_f32x4_add(wasm_f32x4_add(a4, a5), wasm_f32x4_add(a6, a7)));
  s = wasm_f32x4_add(s, wasm_f32x4_add(wasm_f32x4_add(a8, a9), wasm_f32x4_add(a10, a11)));
  return wasm_f32x4_extract_lane(s, 0);
}
