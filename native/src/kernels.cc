#include "kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#if defined(HEALING_ACCELERATE)
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace healing {

// ---------------------------------------------------------------------------------------------------
// threads, BLAS, profile

static int g_threads = 1;

void set_threads(int threads) {
  g_threads = std::max(1, threads);
#if defined(HEALING_OPENBLAS)
  openblas_set_num_threads(g_threads);
#endif
}

int threads() { return g_threads; }

const char* blas_name() {
#if defined(HEALING_ACCELERATE)
  return "Accelerate";
#elif defined(HEALING_OPENBLAS)
  static std::string name;
  if (name.empty()) {
    name = openblas_get_config();
    // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64": the version and the core type are
    // what a reader needs; the rest is build detail.
    const char* core = openblas_get_corename();
    std::string version = name.substr(0, name.find(' ', 9));
    name = version + " (" + core + ")";
  }
  return name.c_str();
#else
  return "CBLAS";
#endif
}

enum KernelId {
  K_SGEMM, K_LINEAR_FWD, K_LINEAR_BWD, K_GELU_FWD, K_GELU_BWD, K_LN_FWD, K_LN_BWD, K_DROPOUT_FWD, K_DROPOUT_BWD,
  K_ATTN_FWD, K_ATTN_BWD, K_EMB_FWD, K_EMB_BWD, K_SUMSQ, K_ADAMW, K_FILL, K_COUNT
};
static ProfileEntry g_profile[K_COUNT] = {
  {"sgemm", 0, 0}, {"linear_forward", 0, 0}, {"linear_backward", 0, 0}, {"gelu_forward", 0, 0},
  {"gelu_backward", 0, 0}, {"layernorm_forward", 0, 0}, {"layernorm_backward", 0, 0},
  {"dropout_add_forward", 0, 0}, {"dropout_backward", 0, 0}, {"attention_forward", 0, 0},
  {"attention_backward", 0, 0}, {"embeddings_forward", 0, 0}, {"embeddings_backward", 0, 0},
  {"sum_squares", 0, 0}, {"adamw", 0, 0}, {"fill", 0, 0},
};

struct Timed {
  KernelId id;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  explicit Timed(KernelId k) : id(k) {}
  ~Timed() {
    g_profile[id].seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    g_profile[id].calls += 1;
  }
};

int profile_entries(const ProfileEntry** out) {
  *out = g_profile;
  return K_COUNT;
}

void profile_reset() {
  for (auto& e : g_profile) e.seconds = 0, e.calls = 0;
}

// Threads for the element-wise kernels: only when the work is big enough to repay waking them.
static inline int par(int64_t work) { return work >= (1 << 15) ? g_threads : 1; }

// ---------------------------------------------------------------------------------------------------
// fast math that vectorises (glibc's erff/expf are scalar calls here): accurate to a few float ulps

static inline float fast_exp(float x) {
  // Cephes expf: e^x = 2^n e^r, |r| <= ln2/2, with a degree-5 polynomial for e^r. Rounding by the
  // 1.5 * 2^23 trick and the bit cast keep the loop vectorisable.
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const float scale = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : y * scale;
}

static inline float fast_erf(float x) {
  // The rational approximation Eigen and XLA use for float erf, on [-4, 4] (erf is +-1 in float beyond).
  x = std::min(std::max(x, -4.0f), 4.0f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

// Sum of n floats with 8 independent lanes (vectorises without reassociating), lanes added in order.
static inline float lane_sum(const float* x, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += x[i + l];
  float s = 0;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (; i < n; i++) s += x[i];
  return s;
}

// ---------------------------------------------------------------------------------------------------
// dropout masks: a counter-based hash (Wellons' lowbias32) of (seed, element index), so the backward
// pass regenerates the forward's mask instead of storing it, and any thread can draw any element.

static inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

struct DropoutMask {
  uint32_t key;
  uint32_t threshold;  // keep iff the hash's top 24 bits >= threshold
  float scale;
  DropoutMask(float p, uint64_t seed)
      : key(mix32(static_cast<uint32_t>(seed) ^ mix32(static_cast<uint32_t>(seed >> 32) + 0x9e3779b9U))),
        threshold(static_cast<uint32_t>(static_cast<double>(p) * 16777216.0)),
        scale(p < 1 ? 1.0f / (1.0f - p) : 0.0f) {}
  inline float factor(uint32_t i) const { return (mix32(i * 0x9e3779b9U + key) >> 8) >= threshold ? scale : 0.0f; }
};

// ---------------------------------------------------------------------------------------------------
// matmuls

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc) {
  Timed timed(K_SGEMM);
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

static inline void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                        int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

void linear_forward(float* out, const float* inp, const float* w, const float* bias, int rows, int in_dim,
                    int out_dim) {
  Timed timed(K_LINEAR_FWD);
  gemm(false, true, rows, out_dim, in_dim, 1.0f, inp, in_dim, w, in_dim, 0.0f, out, out_dim);
  if (!bias) return;
#pragma omp parallel for schedule(static) num_threads(par(int64_t(rows) * out_dim))
  for (int r = 0; r < rows; r++) {
    float* o = out + int64_t(r) * out_dim;
    for (int j = 0; j < out_dim; j++) o[j] += bias[j];
  }
}

// Column sums of x[rows, cols] in ascending row order; threads split the columns.
static void column_sums(float* out, const float* x, int rows, int cols) {
  const int chunk = 64;
  const int chunks = (cols + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(par(int64_t(rows) * cols))
  for (int ch = 0; ch < chunks; ch++) {
    const int c0 = ch * chunk, c1 = std::min(cols, c0 + chunk);
    float acc[64];
    for (int j = c0; j < c1; j++) acc[j - c0] = 0;
    for (int r = 0; r < rows; r++) {
      const float* row = x + int64_t(r) * cols;
      for (int j = c0; j < c1; j++) acc[j - c0] += row[j];
    }
    for (int j = c0; j < c1; j++) out[j] = acc[j - c0];
  }
}

void linear_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w,
                     int rows, int in_dim, int out_dim, bool accumulate) {
  Timed timed(K_LINEAR_BWD);
  if (dinp) gemm(false, false, rows, in_dim, out_dim, 1.0f, dout, out_dim, w, in_dim, accumulate ? 1.0f : 0.0f, dinp, in_dim);
  if (dw) gemm(true, false, out_dim, in_dim, rows, 1.0f, dout, out_dim, inp, in_dim, 0.0f, dw, in_dim);
  if (dbias) column_sums(dbias, dout, rows, out_dim);
}

// ---------------------------------------------------------------------------------------------------
// GELU

static constexpr float kSqrt1_2 = 0.70710678118654752f;
static constexpr float kInvSqrt2Pi = 0.39894228040143268f;

void gelu_forward(float* out, const float* inp, int64_t n) {
  Timed timed(K_GELU_FWD);
#pragma omp parallel for schedule(static) num_threads(par(n))
  for (int64_t i = 0; i < n; i++) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + fast_erf(x * kSqrt1_2));
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  Timed timed(K_GELU_BWD);
#pragma omp parallel for schedule(static) num_threads(par(n))
  for (int64_t i = 0; i < n; i++) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.0f + fast_erf(x * kSqrt1_2));
    const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* gamma, const float* beta,
                       int rows, int c, float eps) {
  Timed timed(K_LN_FWD);
#pragma omp parallel for schedule(static) num_threads(par(int64_t(rows) * c))
  for (int r = 0; r < rows; r++) {
    const float* x = inp + int64_t(r) * c;
    float* o = out + int64_t(r) * c;
    const float m = lane_sum(x, c) / c;
    // Two passes (mean, then squared deviations) as the TF.js graph and PyTorch compute it.
    float dev[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= c; i += 8)
      for (int l = 0; l < 8; l++) dev[l] += (x[i + l] - m) * (x[i + l] - m);
    float var = 0;
    for (int l = 0; l < 8; l++) var += dev[l];
    for (; i < c; i++) var += (x[i] - m) * (x[i] - m);
    var /= c;
    const float s = 1.0f / std::sqrt(var + eps);
    for (int j = 0; j < c; j++) o[j] = (x[j] - m) * s * gamma[j] + beta[j];
    mean[r] = m;
    rstd[r] = s;
  }
}

void layernorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout, const float* inp,
                        const float* mean, const float* rstd, const float* gamma, int rows, int c) {
  Timed timed(K_LN_BWD);
  if (dinp) {
#pragma omp parallel for schedule(static) num_threads(par(int64_t(rows) * c))
    for (int r = 0; r < rows; r++) {
      const float* x = inp + int64_t(r) * c;
      const float* dy = dout + int64_t(r) * c;
      float* dx = dinp + int64_t(r) * c;
      const float m = mean[r], s = rstd[r];
      float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int j = 0;
      for (; j + 8 <= c; j += 8)
        for (int l = 0; l < 8; l++) {
          const float dn = dy[j + l] * gamma[j + l];
          a[l] += dn;
          b[l] += dn * (x[j + l] - m) * s;
        }
      float sum_dn = 0, sum_dn_xhat = 0;
      for (int l = 0; l < 8; l++) sum_dn += a[l], sum_dn_xhat += b[l];
      for (; j < c; j++) {
        const float dn = dy[j] * gamma[j];
        sum_dn += dn;
        sum_dn_xhat += dn * (x[j] - m) * s;
      }
      const float mean_dn = sum_dn / c, mean_dn_xhat = sum_dn_xhat / c;
      for (int k = 0; k < c; k++) {
        const float xhat = (x[k] - m) * s;
        dx[k] = s * (dy[k] * gamma[k] - mean_dn - xhat * mean_dn_xhat);
      }
    }
  }
  if (dgamma || dbeta) {
    const int chunk = 64;
    const int chunks = (c + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(par(int64_t(rows) * c))
    for (int ch = 0; ch < chunks; ch++) {
      const int c0 = ch * chunk, c1 = std::min(c, c0 + chunk);
      float g[64], bsum[64];
      for (int j = 0; j < c1 - c0; j++) g[j] = 0, bsum[j] = 0;
      for (int r = 0; r < rows; r++) {
        const float* x = inp + int64_t(r) * c;
        const float* dy = dout + int64_t(r) * c;
        const float m = mean[r], s = rstd[r];
        for (int j = c0; j < c1; j++) {
          g[j - c0] += dy[j] * ((x[j] - m) * s);
          bsum[j - c0] += dy[j];
        }
      }
      for (int j = c0; j < c1; j++) {
        if (dgamma) dgamma[j] = g[j - c0];
        if (dbeta) dbeta[j] = bsum[j - c0];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// dropout

void dropout_add_forward(float* out, const float* x, const float* residual, int64_t n, float p, uint64_t seed) {
  Timed timed(K_DROPOUT_FWD);
  const DropoutMask mask(p, seed);
  const bool drop = p > 0;
#pragma omp parallel for schedule(static) num_threads(par(n))
  for (int64_t i = 0; i < n; i++) {
    const float y = drop ? x[i] * mask.factor(static_cast<uint32_t>(i)) : x[i];
    out[i] = residual ? y + residual[i] : y;
  }
}

void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed) {
  Timed timed(K_DROPOUT_BWD);
  const DropoutMask mask(p, seed);
  const bool drop = p > 0;
#pragma omp parallel for schedule(static) num_threads(par(n))
  for (int64_t i = 0; i < n; i++) dx[i] = drop ? dout[i] * mask.factor(static_cast<uint32_t>(i)) : dout[i];
}

// ---------------------------------------------------------------------------------------------------
// attention

// While element-wise threads split the heads, each head's small matmuls must run single-threaded in BLAS
// (nested parallelism would oversubscribe the cores); restored afterwards.
struct SerialBlas {
  bool active;
  explicit SerialBlas(bool on) : active(on) {
#if defined(HEALING_OPENBLAS)
    if (active) openblas_set_num_threads(1);
#endif
  }
  ~SerialBlas() {
#if defined(HEALING_OPENBLAS)
    if (active) openblas_set_num_threads(g_threads);
#endif
  }
};

void attention_forward(float* ctx, float* probs, const float* q, const float* k, const float* v, const float* mask,
                       int b, int t, int nh, int d, float scale, float p, uint64_t seed) {
  Timed timed(K_ATTN_FWD);
  const int c = nh * d;
  const int heads = b * nh;
  const int nthreads = std::min(g_threads, heads);
  const DropoutMask drop(p, seed);
  std::vector<float> scratch(p > 0 ? size_t(nthreads) * t * t : 0);
  SerialBlas serial(nthreads > 1);
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int bh = 0; bh < heads; bh++) {
    const int bi = bh / nh, h = bh % nh;
    const float* qh = q + int64_t(bi) * t * c + h * d;
    const float* kh = k + int64_t(bi) * t * c + h * d;
    const float* vh = v + int64_t(bi) * t * c + h * d;
    float* s = probs + int64_t(bh) * t * t;
    gemm(false, true, t, t, d, scale, qh, c, kh, c, 0.0f, s, t);
    const float* mrow = mask ? mask + int64_t(bi) * t : nullptr;
    for (int i = 0; i < t; i++) {
      float* row = s + int64_t(i) * t;
      if (mrow)
        for (int j = 0; j < t; j++) row[j] += mrow[j];
      float mx = row[0];
      for (int j = 1; j < t; j++) mx = std::max(mx, row[j]);
      for (int j = 0; j < t; j++) row[j] = fast_exp(row[j] - mx);
      const float inv = 1.0f / lane_sum(row, t);
      for (int j = 0; j < t; j++) row[j] *= inv;
    }
    const float* pd = s;
    if (p > 0) {
#ifdef _OPENMP
      float* tmp = scratch.data() + size_t(omp_get_thread_num()) * t * t;
#else
      float* tmp = scratch.data();
#endif
      const uint32_t base = static_cast<uint32_t>(int64_t(bh) * t * t);
      for (int64_t e = 0; e < int64_t(t) * t; e++) tmp[e] = s[e] * drop.factor(base + static_cast<uint32_t>(e));
      pd = tmp;
    }
    gemm(false, false, t, d, t, 1.0f, pd, t, vh, c, 0.0f, ctx + int64_t(bi) * t * c + h * d, c);
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dctx, const float* q, const float* k,
                        const float* v, const float* probs, int b, int t, int nh, int d, float scale, float p,
                        uint64_t seed) {
  Timed timed(K_ATTN_BWD);
  const int c = nh * d;
  const int heads = b * nh;
  const int nthreads = std::min(g_threads, heads);
  const DropoutMask drop(p, seed);
  const size_t tt = size_t(t) * t;
  std::vector<float> scratch(size_t(nthreads) * tt * 2);
  SerialBlas serial(nthreads > 1);
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int bh = 0; bh < heads; bh++) {
    const int bi = bh / nh, h = bh % nh;
    const int64_t off = int64_t(bi) * t * c + h * d;
#ifdef _OPENMP
    float* pd = scratch.data() + size_t(omp_get_thread_num()) * tt * 2;
#else
    float* pd = scratch.data();
#endif
    float* dp = pd + tt;
    const float* pr = probs + int64_t(bh) * tt;
    const uint32_t base = static_cast<uint32_t>(int64_t(bh) * tt);
    if (p > 0)
      for (size_t e = 0; e < tt; e++) pd[e] = pr[e] * drop.factor(base + static_cast<uint32_t>(e));
    const float* used = p > 0 ? pd : pr;
    // dv = dropout(P)^T dctx; d(dropout(P)) = dctx v^T
    gemm(true, false, t, d, t, 1.0f, used, t, dctx + off, c, 0.0f, dv + off, c);
    gemm(false, true, t, t, d, 1.0f, dctx + off, c, v + off, c, 0.0f, dp, t);
    // through dropout, then softmax: dS = P * (dP - rowsum(P * dP)), times the score scale
    for (int i = 0; i < t; i++) {
      float* dpr = dp + int64_t(i) * t;
      const float* prow = pr + int64_t(i) * t;
      if (p > 0)
        for (int j = 0; j < t; j++) dpr[j] *= drop.factor(base + static_cast<uint32_t>(int64_t(i) * t + j));
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int j = 0;
      for (; j + 8 <= t; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += prow[j + l] * dpr[j + l];
      float dot = 0;
      for (int l = 0; l < 8; l++) dot += acc[l];
      for (; j < t; j++) dot += prow[j] * dpr[j];
      for (int jj = 0; jj < t; jj++) dpr[jj] = prow[jj] * (dpr[jj] - dot) * scale;
    }
    gemm(false, false, t, d, t, 1.0f, dp, t, k + off, c, 0.0f, dq + off, c);
    gemm(true, false, t, d, t, 1.0f, dp, t, q + off, c, 0.0f, dk + off, c);
  }
}

// ---------------------------------------------------------------------------------------------------
// embeddings

void embeddings_forward(float* out, const int32_t* ids, const int32_t* type_ids, const float* word, const float* pos,
                        const float* type, int b, int t, int c) {
  Timed timed(K_EMB_FWD);
  const int n = b * t;
#pragma omp parallel for schedule(static) num_threads(par(int64_t(n) * c))
  for (int i = 0; i < n; i++) {
    float* o = out + int64_t(i) * c;
    const float* w = word + int64_t(ids[i]) * c;
    const float* ps = pos + int64_t(i % t) * c;
    if (type) {
      const float* ty = type + int64_t(type_ids ? type_ids[i] : 0) * c;
      for (int j = 0; j < c; j++) o[j] = w[j] + ps[j] + ty[j];
    } else {
      for (int j = 0; j < c; j++) o[j] = w[j] + ps[j];
    }
  }
}

void embeddings_backward(float* dword, float* dpos, float* dtype, const float* dout, const int32_t* ids,
                         const int32_t* type_ids, int b, int t, int c, int vocab, int positions, int types) {
  Timed timed(K_EMB_BWD);
  const int n = b * t;
  std::fill(dword, dword + int64_t(vocab) * c, 0.0f);
  std::fill(dpos, dpos + int64_t(positions) * c, 0.0f);
  if (dtype) std::fill(dtype, dtype + int64_t(types) * c, 0.0f);
  // Threads split the columns; each walks the tokens in order, so sums do not depend on the thread count.
  const int chunk = 32;
  const int chunks = (c + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(par(int64_t(n) * c))
  for (int ch = 0; ch < chunks; ch++) {
    const int c0 = ch * chunk, c1 = std::min(c, c0 + chunk);
    for (int i = 0; i < n; i++) {
      const float* g = dout + int64_t(i) * c;
      float* w = dword + int64_t(ids[i]) * c;
      float* ps = dpos + int64_t(i % t) * c;
      for (int j = c0; j < c1; j++) w[j] += g[j], ps[j] += g[j];
      if (dtype) {
        float* ty = dtype + int64_t(type_ids ? type_ids[i] : 0) * c;
        for (int j = c0; j < c1; j++) ty[j] += g[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// optimizer

double sum_squares(const float* x, int64_t n) {
  Timed timed(K_SUMSQ);
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++) acc[l] += double(x[i + l]) * x[i + l];
  double s = acc[0] + acc[1] + acc[2] + acc[3];
  for (; i < n; i++) s += double(x[i]) * x[i];
  return s;
}

void adamw(float* p, float* m, float* v, const float* g, int64_t n, float beta1, float beta2, float eps,
           float decay_factor, float step_size, float inv_sqrt_bc2, float grad_scale, bool first) {
  Timed timed(K_ADAMW);
  const float a1 = 1.0f - beta1, a2 = 1.0f - beta2;
#pragma omp parallel for schedule(static) num_threads(par(n))
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * grad_scale;
    const float mi = first ? gi * a1 : m[i] * beta1 + gi * a1;
    const float vi = first ? gi * gi * a2 : v[i] * beta2 + gi * gi * a2;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_sqrt_bc2 + eps;
    p[i] = p[i] * decay_factor - (mi / denom) * step_size;
  }
}

void fill(float* x, int64_t n, float value) {
  Timed timed(K_FILL);
  std::fill(x, x + n, value);
}

}  // namespace healing
