// N-API bindings. Every kernel call takes the TF.js wasm heap (the WebAssembly.Memory's ArrayBuffer) first,
// then byte offsets into it (-1 for "none") and sizes as numbers. The addon never keeps the buffer: the
// heap moves when it grows, so the caller passes the current one on every call.
#include <node_api.h>

#include <cstdint>
#include <string>

#include "kernels.h"

namespace {

struct Args {
  napi_env env;
  napi_value argv[24];
  size_t argc = 24;
  uint8_t* heap = nullptr;
  size_t heap_bytes = 0;
  bool ok = true;

  Args(napi_env e, napi_callback_info info, size_t expected, bool with_heap = true) : env(e) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    if (argc < expected) {
      fail("wrong number of arguments");
      return;
    }
    if (with_heap) {
      void* data = nullptr;
      bool is_ab = false;
      napi_is_arraybuffer(env, argv[0], &is_ab);
      if (!is_ab) {
        fail("first argument must be the wasm heap ArrayBuffer");
        return;
      }
      napi_get_arraybuffer_info(env, argv[0], &data, &heap_bytes);
      heap = static_cast<uint8_t*>(data);
    }
  }
  void fail(const char* message) {
    if (ok) napi_throw_error(env, nullptr, message);
    ok = false;
  }
  double num(size_t i) {
    double value = 0;
    if (ok && napi_get_value_double(env, argv[i], &value) != napi_ok) fail("expected a number argument");
    return value;
  }
  int64_t i64(size_t i) { return static_cast<int64_t>(num(i)); }
  int i32(size_t i) { return static_cast<int>(num(i)); }
  bool flag(size_t i) { return num(i) != 0; }
  // A byte offset into the heap, checked against its end for `bytes` bytes.
  template <typename T>
  T* ptr(size_t i, int64_t count) {
    const double offset = num(i);
    if (!ok || offset < 0) return nullptr;
    const uint64_t start = static_cast<uint64_t>(offset);
    const uint64_t bytes = static_cast<uint64_t>(count < 0 ? 0 : count) * sizeof(T);
    if (start % alignof(T) != 0 || start + bytes > heap_bytes) {
      fail("a tensor offset lies outside the wasm heap or is misaligned");
      return nullptr;
    }
    return reinterpret_cast<T*>(heap + start);
  }
  float* f(size_t i, int64_t count) { return ptr<float>(i, count); }
  int32_t* ints(size_t i, int64_t count) { return ptr<int32_t>(i, count); }
};

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value number(napi_env env, double x) {
  napi_value v;
  napi_create_double(env, x, &v);
  return v;
}

// sgemm(heap, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
napi_value Sgemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 14);
  const bool ta = a.flag(1), tb = a.flag(2);
  const int m = a.i32(3), n = a.i32(4), k = a.i32(5), lda = a.i32(8), ldb = a.i32(10), ldc = a.i32(13);
  const float alpha = float(a.num(6)), beta = float(a.num(11));
  const float* A = a.f(7, int64_t(ta ? k : m) * lda);
  const float* B = a.f(9, int64_t(tb ? n : k) * ldb);
  float* C = a.f(12, int64_t(m) * ldc);
  if (!a.ok) return nullptr;
  healing::sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  return undefined(env);
}

// batchMatMul(heap, a, b, c, m, n, k, transA, transB, batch, aStride, bStride): c[i] = op(a[i*aStride]) op(b[i*bStride]);
// strides in floats (0 broadcasts one operand over the batch).
napi_value BatchMatMul(napi_env env, napi_callback_info info) {
  Args a(env, info, 12);
  const int m = a.i32(4), n = a.i32(5), k = a.i32(6), batch = a.i32(9);
  const bool ta = a.flag(7), tb = a.flag(8);
  const int64_t sa = a.i64(10), sb = a.i64(11);
  const float* A = a.f(1, sa * (batch - 1) + int64_t(m) * k);
  const float* B = a.f(2, sb * (batch - 1) + int64_t(k) * n);
  float* C = a.f(3, int64_t(batch) * m * n);
  if (!a.ok) return nullptr;
  for (int i = 0; i < batch; i++)
    healing::sgemm(ta, tb, m, n, k, 1.0f, A + i * sa, ta ? m : k, B + i * sb, tb ? k : n, 0.0f, C + int64_t(i) * m * n, n);
  return undefined(env);
}

// linearForward(heap, out, inp, w, bias, rows, in, out)
napi_value LinearForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  const int rows = a.i32(5), in = a.i32(6), out = a.i32(7);
  float* o = a.f(1, int64_t(rows) * out);
  const float* x = a.f(2, int64_t(rows) * in);
  const float* w = a.f(3, int64_t(out) * in);
  const float* b = a.f(4, out);
  if (!a.ok) return nullptr;
  healing::linear_forward(o, x, w, b, rows, in, out);
  return undefined(env);
}

// linearBackward(heap, dinp, dw, dbias, dout, inp, w, rows, in, out, accumulate)
napi_value LinearBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  const int rows = a.i32(7), in = a.i32(8), out = a.i32(9);
  float* dx = a.f(1, int64_t(rows) * in);
  float* dw = a.f(2, int64_t(out) * in);
  float* db = a.f(3, out);
  const float* dy = a.f(4, int64_t(rows) * out);
  const float* x = a.f(5, int64_t(rows) * in);
  const float* w = a.f(6, int64_t(out) * in);
  if (!a.ok) return nullptr;
  healing::linear_backward(dx, dw, db, dy, x, w, rows, in, out, a.flag(10));
  return undefined(env);
}

// geluForward(heap, out, inp, n) / geluBackward(heap, dinp, inp, dout, n)
napi_value GeluForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  const int64_t n = a.i64(3);
  float* o = a.f(1, n);
  const float* x = a.f(2, n);
  if (!a.ok) return nullptr;
  healing::gelu_forward(o, x, n);
  return undefined(env);
}

napi_value GeluBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 5);
  const int64_t n = a.i64(4);
  float* dx = a.f(1, n);
  const float* x = a.f(2, n);
  const float* dy = a.f(3, n);
  if (!a.ok) return nullptr;
  healing::gelu_backward(dx, x, dy, n);
  return undefined(env);
}

// layerNormForward(heap, out, mean, rstd, inp, gamma, beta, rows, c, eps)
napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  const int rows = a.i32(7), c = a.i32(8);
  float* o = a.f(1, int64_t(rows) * c);
  float* mean = a.f(2, rows);
  float* rstd = a.f(3, rows);
  const float* x = a.f(4, int64_t(rows) * c);
  const float* g = a.f(5, c);
  const float* b = a.f(6, c);
  if (!a.ok) return nullptr;
  if (!o || !mean || !rstd || !x || !g || !b) {
    a.fail("layerNormForward: every tensor is required");
    return nullptr;
  }
  healing::layernorm_forward(o, mean, rstd, x, g, b, rows, c, float(a.num(9)));
  return undefined(env);
}

// layerNormBackward(heap, dinp, dgamma, dbeta, dout, inp, mean, rstd, gamma, rows, c)
napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  const int rows = a.i32(9), c = a.i32(10);
  float* dx = a.f(1, int64_t(rows) * c);
  float* dg = a.f(2, c);
  float* db = a.f(3, c);
  const float* dy = a.f(4, int64_t(rows) * c);
  const float* x = a.f(5, int64_t(rows) * c);
  const float* mean = a.f(6, rows);
  const float* rstd = a.f(7, rows);
  const float* g = a.f(8, c);
  if (!a.ok) return nullptr;
  healing::layernorm_backward(dx, dg, db, dy, x, mean, rstd, g, rows, c);
  return undefined(env);
}

// dropoutAddForward(heap, out, x, residual, n, p, seed) / dropoutBackward(heap, dx, dout, n, p, seed)
napi_value DropoutAddForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  const int64_t n = a.i64(4);
  float* o = a.f(1, n);
  const float* x = a.f(2, n);
  const float* r = a.f(3, n);
  if (!a.ok) return nullptr;
  healing::dropout_add_forward(o, x, r, n, float(a.num(5)), uint64_t(a.num(6)));
  return undefined(env);
}

napi_value DropoutBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  const int64_t n = a.i64(3);
  float* dx = a.f(1, n);
  const float* dy = a.f(2, n);
  if (!a.ok) return nullptr;
  healing::dropout_backward(dx, dy, n, float(a.num(4)), uint64_t(a.num(5)));
  return undefined(env);
}

// attentionForward(heap, ctx, probs, q, k, v, mask, b, t, nh, d, scale, p, seed)
napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 14);
  const int b = a.i32(7), t = a.i32(8), nh = a.i32(9), d = a.i32(10);
  const int64_t act = int64_t(b) * t * nh * d;
  float* ctx = a.f(1, act);
  float* probs = a.f(2, int64_t(b) * nh * t * t);
  const float* q = a.f(3, act);
  const float* k = a.f(4, act);
  const float* v = a.f(5, act);
  const float* mask = a.f(6, int64_t(b) * t);
  if (!a.ok) return nullptr;
  healing::attention_forward(ctx, probs, q, k, v, mask, b, t, nh, d, float(a.num(11)), float(a.num(12)),
                             uint64_t(a.num(13)));
  return undefined(env);
}

// attentionBackward(heap, dq, dk, dv, dctx, q, k, v, probs, b, t, nh, d, scale, p, seed)
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 16);
  const int b = a.i32(9), t = a.i32(10), nh = a.i32(11), d = a.i32(12);
  const int64_t act = int64_t(b) * t * nh * d;
  float* dq = a.f(1, act);
  float* dk = a.f(2, act);
  float* dv = a.f(3, act);
  const float* dctx = a.f(4, act);
  const float* q = a.f(5, act);
  const float* k = a.f(6, act);
  const float* v = a.f(7, act);
  const float* probs = a.f(8, int64_t(b) * nh * t * t);
  if (!a.ok) return nullptr;
  healing::attention_backward(dq, dk, dv, dctx, q, k, v, probs, b, t, nh, d, float(a.num(13)), float(a.num(14)),
                              uint64_t(a.num(15)));
  return undefined(env);
}

// embeddingsForward(heap, out, ids, typeIds, word, pos, type, b, t, c, vocab, positions, types)
napi_value EmbeddingsForward(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  const int b = a.i32(7), t = a.i32(8), c = a.i32(9), vocab = a.i32(10), positions = a.i32(11), types = a.i32(12);
  float* o = a.f(1, int64_t(b) * t * c);
  const int32_t* ids = a.ints(2, int64_t(b) * t);
  const int32_t* type_ids = a.ints(3, int64_t(b) * t);
  const float* word = a.f(4, int64_t(vocab) * c);
  const float* pos = a.f(5, int64_t(positions) * c);
  const float* type = a.f(6, int64_t(types) * c);
  if (!a.ok) return nullptr;
  if (t > positions) {
    a.fail("embeddingsForward: sequence longer than the position table");
    return nullptr;
  }
  // An out-of-range id would read outside its table: checked here, where the gather happens.
  for (int64_t i = 0; i < int64_t(b) * t; i++) {
    if (ids[i] < 0 || ids[i] >= vocab || (type && type_ids && (type_ids[i] < 0 || type_ids[i] >= types))) {
      a.fail("embeddingsForward: a token id or token type id is outside its embedding table");
      return nullptr;
    }
  }
  healing::embeddings_forward(o, ids, type_ids, word, pos, type, b, t, c);
  return undefined(env);
}

// embeddingsBackward(heap, dword, dpos, dtype, dout, ids, typeIds, b, t, c, vocab, positions, types)
napi_value EmbeddingsBackward(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  const int b = a.i32(7), t = a.i32(8), c = a.i32(9), vocab = a.i32(10), positions = a.i32(11), types = a.i32(12);
  float* dword = a.f(1, int64_t(vocab) * c);
  float* dpos = a.f(2, int64_t(positions) * c);
  float* dtype = a.f(3, int64_t(types) * c);
  const float* dout = a.f(4, int64_t(b) * t * c);
  const int32_t* ids = a.ints(5, int64_t(b) * t);
  const int32_t* type_ids = a.ints(6, int64_t(b) * t);
  if (!a.ok) return nullptr;
  healing::embeddings_backward(dword, dpos, dtype, dout, ids, type_ids, b, t, c, vocab, positions, types);
  return undefined(env);
}

// sumSquares(heap, x, n) -> number
napi_value SumSquares(napi_env env, napi_callback_info info) {
  Args a(env, info, 3);
  const int64_t n = a.i64(2);
  const float* x = a.f(1, n);
  if (!a.ok) return nullptr;
  return number(env, x ? healing::sum_squares(x, n) : 0.0);
}

// adamw(heap, p, m, v, g, n, beta1, beta2, eps, decayFactor, stepSize, invSqrtBc2, gradScale, first)
napi_value AdamW(napi_env env, napi_callback_info info) {
  Args a(env, info, 14);
  const int64_t n = a.i64(5);
  float* p = a.f(1, n);
  float* m = a.f(2, n);
  float* v = a.f(3, n);
  const float* g = a.f(4, n);
  if (!a.ok) return nullptr;
  healing::adamw(p, m, v, g, n, float(a.num(6)), float(a.num(7)), float(a.num(8)), float(a.num(9)), float(a.num(10)),
                 float(a.num(11)), float(a.num(12)), a.flag(13));
  return undefined(env);
}

// fill(heap, x, n, value)
napi_value Fill(napi_env env, napi_callback_info info) {
  Args a(env, info, 4);
  const int64_t n = a.i64(2);
  float* x = a.f(1, n);
  if (!a.ok) return nullptr;
  if (x) healing::fill(x, n, float(a.num(3)));
  return undefined(env);
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a(env, info, 1, false);
  const int n = a.i32(0);
  if (!a.ok) return nullptr;
  healing::set_threads(n);
  return undefined(env);
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, blas, threads;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, healing::blas_name(), NAPI_AUTO_LENGTH, &blas);
  napi_create_int32(env, healing::threads(), &threads);
  napi_set_named_property(env, obj, "blas", blas);
  napi_set_named_property(env, obj, "threads", threads);
#ifdef _OPENMP
  napi_value openmp;
  napi_get_boolean(env, true, &openmp);
  napi_set_named_property(env, obj, "openmp", openmp);
#endif
  return obj;
}

napi_value Profile(napi_env env, napi_callback_info) {
  const healing::ProfileEntry* entries = nullptr;
  const int count = healing::profile_entries(&entries);
  napi_value obj;
  napi_create_object(env, &obj);
  for (int i = 0; i < count; i++) {
    if (entries[i].calls == 0) continue;
    napi_value entry;
    napi_create_object(env, &entry);
    napi_set_named_property(env, entry, "seconds", number(env, entries[i].seconds));
    napi_set_named_property(env, entry, "calls", number(env, double(entries[i].calls)));
    napi_set_named_property(env, obj, entries[i].name, entry);
  }
  return obj;
}

napi_value ProfileReset(napi_env env, napi_callback_info) {
  healing::profile_reset();
  return undefined(env);
}

napi_value Init(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {
      {"sgemm", Sgemm},
      {"batchMatMul", BatchMatMul},
      {"linearForward", LinearForward},
      {"linearBackward", LinearBackward},
      {"geluForward", GeluForward},
      {"geluBackward", GeluBackward},
      {"layerNormForward", LayerNormForward},
      {"layerNormBackward", LayerNormBackward},
      {"dropoutAddForward", DropoutAddForward},
      {"dropoutBackward", DropoutBackward},
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      {"embeddingsForward", EmbeddingsForward},
      {"embeddingsBackward", EmbeddingsBackward},
      {"sumSquares", SumSquares},
      {"adamw", AdamW},
      {"fill", Fill},
      {"setThreads", SetThreads},
      {"info", Info},
      {"profile", Profile},
      {"profileReset", ProfileReset},
  };
  for (const auto& f : fns) {
    napi_value value;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &value);
    napi_set_named_property(env, exports, f.name, value);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
