// healing-bert's native CPU kernels: BLAS matmuls and the fused pieces of a BERT layer, forward and
// backward side by side (llm.c's kernel boundaries). Every pointer points into the TF.js wasm heap;
// every output is written whole (the heap is not zeroed), never accumulated into, unless a kernel's
// name says `accumulate`.
//
// Layouts are row-major and PyTorch's: a linear weight is [out, in]; activations are [rows, features];
// attention tensors q/k/v/ctx are [B, T, C] with head h in columns h*D .. h*D+D-1.
//
// Determinism: every reduction runs in an order fixed by the shapes alone (rows in ascending order,
// per-chunk partial sums combined in chunk order), and dropout masks are a pure function of
// (seed, element index), so the same inputs give the same bits whatever the thread count of the
// element-wise kernels. BLAS calls are deterministic for a fixed BLAS thread count.
#pragma once
#include <cstdint>

namespace healing {

void set_threads(int threads);
int threads();
const char* blas_name();

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, leading dimensions as BLAS takes them.
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

// out[rows, out_dim] = inp[rows, in_dim] W^T + bias (bias may be null).
void linear_forward(float* out, const float* inp, const float* w, const float* bias, int rows, int in_dim, int out_dim);
// dinp = dout W (or += when accumulate), dw = dout^T inp, dbias = column sums of dout (any may be null).
void linear_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w,
                     int rows, int in_dim, int out_dim, bool accumulate);

// Exact (erf) GELU, as BERT uses.
void gelu_forward(float* out, const float* inp, int64_t n);
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n);

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* gamma, const float* beta,
                       int rows, int c, float eps);
// Any of dinp, dgamma, dbeta may be null.
void layernorm_backward(float* dinp, float* dgamma, float* dbeta, const float* dout, const float* inp,
                        const float* mean, const float* rstd, const float* gamma, int rows, int c);

// Inverted dropout from a counter-based hash: element i is kept iff hash(seed, i) >= p.
// out = dropout(x) + residual (residual may be null).
void dropout_add_forward(float* out, const float* x, const float* residual, int64_t n, float p, uint64_t seed);
// dx = dout * mask / (1 - p).
void dropout_backward(float* dx, const float* dout, int64_t n, float p, uint64_t seed);

// Multi-head attention core: probs[B,NH,T,T] = softmax(scale q k^T + mask) (saved before dropout),
// ctx = dropout(probs) v. mask is additive per key, [B, T], or null.
void attention_forward(float* ctx, float* probs, const float* q, const float* k, const float* v, const float* mask,
                       int b, int t, int nh, int d, float scale, float p, uint64_t seed);
void attention_backward(float* dq, float* dk, float* dv, const float* dctx, const float* q, const float* k,
                        const float* v, const float* probs, int b, int t, int nh, int d, float scale, float p,
                        uint64_t seed);

// out[n, C] = word[ids] + pos[position] + type[type_ids] (type may be null: DistilBERT).
void embeddings_forward(float* out, const int32_t* ids, const int32_t* type_ids, const float* word, const float* pos,
                        const float* type, int b, int t, int c);
// Dense gradients of the three tables (zeroed first), accumulated in token order.
void embeddings_backward(float* dword, float* dpos, float* dtype, const float* dout, const int32_t* ids,
                         const int32_t* type_ids, int b, int t, int c, int vocab, int positions, int types);

// Row-wise log-softmax cross-entropy of integer labels: returns the mean loss; dlogits = d(mean)/d(logits).
double cross_entropy(float* dlogits, const float* logits, const int32_t* labels, int rows, int classes);

// Sum of squares in double, in a fixed order.
double sum_squares(const float* x, int64_t n);

// torch.optim.AdamW on one tensor, in place: p *= decay_factor; m,v moments of g*grad_scale;
// p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps).
void adamw(float* p, float* m, float* v, const float* g, int64_t n, float beta1, float beta2, float eps,
           float decay_factor, float step_size, float inv_sqrt_bc2, float grad_scale, bool first);

void fill(float* x, int64_t n, float value);

// Per-kernel wall time since the last reset, for the benchmark's profile.
struct ProfileEntry {
  const char* name;
  double seconds;
  int64_t calls;
};
int profile_entries(const ProfileEntry** out);
void profile_reset();

}  // namespace healing
