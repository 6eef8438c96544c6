/* The U-Net trunk for batch-1 CPU inference as one call: a list of ops run over one float arena.
 *
 * Built by unet1d_native.py (gcc -O3 -march=native, cached per source and CPU). The Python side lays
 * out the weights, allocates every activation in the arena and writes the op list; this file checks
 * every op against the sizes of the buffers it is handed (takeover_unet_run refuses a list that
 * reaches outside them before running any of it) and runs it. Activations are channels-last (T rows of C floats) with zero rows above and below each
 * buffer's interior, so a convolution's input windows are contiguous k*C_in runs and a convolution is
 * a GEMM (T_out x k*C_in) @ (k*C_in x C_out) with the window rows `stride * C_in` floats apart.
 * A correct op list writes only interiors, so the border rows stay zero from the arena's allocation.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat8(float s) { return (v8){s, s, s, s, s, s, s, s}; }

/* out[r][0:8*NV] = bias + sum_q x[r*ldx + q] * w[q*N + 0:8*NV] for R rows: R*NV accumulators in
 * registers; always_inline with constant R and NV lets the compiler unroll both. */
static inline __attribute__((always_inline)) void gemm_tile(const int R, const int NV, const float *x, int ldx, int K,
                                                            const float *w, const float *bias, float *out, int ldo) {
    v8 acc[4][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = load8(bias + 8 * v);
    for (int q = 0; q < K; q++) {
        const float *wq = w + (size_t)q * 8 * NV;
        v8 w0 = load8(wq), w1 = NV > 1 ? load8(wq + 8) : splat8(0.f);
        for (int r = 0; r < R; r++) {
            v8 xr = splat8(x[(size_t)r * ldx + q]);
            acc[r][0] += xr * w0;
            if (NV > 1) acc[r][1] += xr * w1;
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) store8(out + (size_t)r * ldo + 8 * v, acc[r][v]);
}

#define TILE_ROWS(R)                                                                     \
    do {                                                                                 \
        if (nv == 2) gemm_tile(R, 2, xm, ldx, K, wp, bias + n0, om + n0, ldo);           \
        else gemm_tile(R, 1, xm, ldx, K, wp, bias + n0, om + n0, ldo);                   \
    } while (0)

/* out (M x N, rows ldo apart) = x (M x K, rows ldx apart) @ W + bias, W packed in column panels: for
 * each 16 columns (8 for the last multiple of 8) a K x 16 block, then the K x (N % 8) tail, so the
 * tile loop reads its weights sequentially. At batch 1 every weight is used by only 4-16 rows and the
 * small U-Net's 3.9 MB of weights do not fit in L2: reading them is the cost to keep low. */
static void gemm(const float *x, int ldx, int M, int K, const float *w, int N, const float *bias, float *out, int ldo) {
    int n8 = N & ~7;
    for (int n0 = 0; n0 < n8; n0 += 16) {
        int nv = n8 - n0 >= 16 ? 2 : 1;
        const float *wp = w + (size_t)n0 * K;
        int m0 = 0;
        for (; m0 + 4 <= M; m0 += 4) {
            const float *xm = x + (size_t)m0 * ldx;
            float *om = out + (size_t)m0 * ldo;
            TILE_ROWS(4);
        }
        const float *xm = x + (size_t)m0 * ldx;
        float *om = out + (size_t)m0 * ldo;
        switch (M - m0) {
        case 3: TILE_ROWS(3); break;
        case 2: TILE_ROWS(2); break;
        case 1: TILE_ROWS(1); break;
        default: break;
        }
    }
    int tail = N - n8;  /* columns past the last multiple of 8: the final 1x1 conv's A outputs */
    const float *wt = w + (size_t)n8 * K;
    for (int n = 0; n < tail; n++)
        for (int m = 0; m < M; m++) {
            float s = bias[n8 + n];
            const float *xm = x + (size_t)m * ldx;
            for (int q = 0; q < K; q++) s += xm[q] * wt[(size_t)q * tail + n];
            out[(size_t)m * ldo + n8 + n] = s;
        }
}

/* exp for the Mish below: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6 Taylor (rel. error
 * ~2e-7 on that interval); x clamped to [-87, 87]. */
static inline v8 exp8(v8 x) {
    const v8 hi = splat8(87.f), lo = splat8(-87.f);
    vi8 m = x > hi;
    x = (v8)((m & (vi8)hi) | (~m & (vi8)x));
    m = x < lo;
    x = (v8)((m & (vi8)lo) | (~m & (vi8)x));
    v8 t = x * splat8(1.44269504088896341f);
    vi8 n = __builtin_convertvector(t + (v8)((vi8)splat8(0.5f) | ((vi8)t & (vi8)splat8(-0.f))), vi8);  /* round half away */
    v8 nf = __builtin_convertvector(n, v8);
    v8 r = x - nf * splat8(0.693359375f) - nf * splat8(-2.12194440e-4f);
    v8 p = splat8(1.f / 720);
    p = p * r + splat8(1.f / 120);
    p = p * r + splat8(1.f / 24);
    p = p * r + splat8(1.f / 6);
    p = p * r + splat8(0.5f);
    p = p * r + splat8(1.f);
    p = p * r + splat8(1.f);
    vi8 bits = (n + 127) << 23;
    return p * (v8)bits;
}

/* Mish(y) = y tanh(softplus(y)) = y * n / (n + 2) with n = e^y (e^y + 2); for y >= 20 the ratio is
 * 1 in float, so y is clamped there before the exp and the product is exact. */
static inline v8 mish8(v8 y) {
    const v8 cap = splat8(20.f);
    vi8 m = y > cap;
    v8 e = exp8((v8)((m & (vi8)cap) | (~m & (vi8)y)));
    v8 n = e * (e + splat8(2.f));
    return y * n / (n + splat8(2.f));
}

static inline float mish1(float y) {
    float e = expf(y < 20.f ? y : 20.f);
    float n = e * (e + 2.f);
    return y * n / (n + 2.f);
}

/* GroupNorm over T rows x C channels (groups of C/G adjacent channels, statistics over time and the
 * group's channels, biased variance as torch), then Mish, in place. Two passes for the variance. */
#define MAX_C 4096  /* widest GroupNorm (its per-channel statistics live on the stack) */
static void group_norm_mish(float *x, int T, int C, int G, const float *gamma, const float *beta, float eps) {
    float sum[MAX_C], scale[MAX_C], shift[MAX_C];
    int cg = C / G;
    float n = (float)T * cg;
    for (int c = 0; c < C; c++) sum[c] = 0.f;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) sum[c] += x[(size_t)t * C + c];
    for (int g = 0; g < G; g++) {
        float s = 0.f;
        for (int c = g * cg; c < (g + 1) * cg; c++) s += sum[c];
        float mean = s / n;
        for (int c = g * cg; c < (g + 1) * cg; c++) shift[c] = mean;
    }
    for (int c = 0; c < C; c++) sum[c] = 0.f;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            float d = x[(size_t)t * C + c] - shift[c];
            sum[c] += d * d;
        }
    for (int g = 0; g < G; g++) {
        float s = 0.f;
        for (int c = g * cg; c < (g + 1) * cg; c++) s += sum[c];
        float rstd = 1.f / sqrtf(s / n + eps);
        for (int c = g * cg; c < (g + 1) * cg; c++) {
            scale[c] = rstd * gamma[c];
            shift[c] = beta[c] - shift[c] * scale[c];
        }
    }
    int c8 = C & ~7;
    for (int t = 0; t < T; t++) {
        float *row = x + (size_t)t * C;
        for (int c = 0; c < c8; c += 8) store8(row + c, mish8(load8(row + c) * load8(scale + c) + load8(shift + c)));
        for (int c = c8; c < C; c++) row[c] = mish1(row[c] * scale[c] + shift[c]);
    }
}

/* The op list, the one definition of the opcodes: unet1d_native.py reads the names and numbers from
 * takeover_unet_op_name() and the op size from takeover_unet_op_words(). Every op is OP_WORDS int32:
 * opcode, then arguments (offsets and sizes count floats):
 *   COPY_IN   dst, n                          arena[dst + i] = x[i], i < n
 *   CONV      src, dst, M, K, N, ldx, w, b    dst (M x N) = windows of arena+src (M x K, rows ldx apart) @ w + b
 *                                             (w in gemm()'s column panels)
 *   NORM_MISH buf, T, C, G, gamma, beta, eps  (eps: a float in the weights)
 *   FILM      buf, T, C, f                    buf[t][c] = buf[t][c] * film[f + c] + film[f + C + c]
 *   ADD       dst, src, n
 *   CONCAT    dst, a, b, T, C1, C2            dst[t] = [a[t] (C1) | b[t] (C2)]
 *   COPY_OUT  src, n                          out[i] = arena[src + i] */
#define TAKEOVER_OPS(X) X(COPY_IN) X(CONV) X(NORM_MISH) X(FILM) X(ADD) X(CONCAT) X(COPY_OUT)
#define AS_ENUM(name) OP_##name,
#define AS_NAME(name) #name,
enum { TAKEOVER_OPS(AS_ENUM) N_OPS };
static const char *const op_names[] = {TAKEOVER_OPS(AS_NAME)};
#define OP_WORDS 10

const char *takeover_unet_op_name(int code) { return code >= 0 && code < N_OPS ? op_names[code] : 0; }
int takeover_unet_op_words(void) { return OP_WORDS; }
int takeover_unet_max_channels(void) { return MAX_C; }

/* [at, at + n) lies inside a buffer of `size` floats (64-bit: int32 products cannot overflow here). */
static int inside(int64_t at, int64_t n, int64_t size) { return at >= 0 && n >= 0 && at + n <= size; }

/* Whether op `a` reads and writes only inside the buffers it is given: the arena, the weights, one
 * chunk's input and output (x_len floats each) and one chunk's FiLM row (film_len floats). */
static int op_is_safe(const int32_t *a, int64_t weights_len, int64_t arena_len, int64_t x_len, int64_t film_len) {
    switch (a[0]) {
    case OP_COPY_IN:
    case OP_COPY_OUT: return a[2] <= x_len && inside(a[1], a[2], arena_len);
    case OP_CONV: {
        int64_t M = a[3], K = a[4], N = a[5], ldx = a[6];
        return M > 0 && K > 0 && N > 0 && ldx > 0 && inside(a[1], (M - 1) * ldx + K, arena_len) &&
               inside(a[2], M * N, arena_len) && inside(a[7], K * N, weights_len) && inside(a[8], N, weights_len);
    }
    case OP_NORM_MISH: {
        int64_t T = a[2], C = a[3], G = a[4];
        return T > 0 && C > 0 && C <= MAX_C && G > 0 && C % G == 0 && inside(a[1], T * C, arena_len) &&
               inside(a[5], C, weights_len) && inside(a[6], C, weights_len) && inside(a[7], 1, weights_len);
    }
    case OP_FILM: return a[2] >= 0 && a[3] >= 0 && inside(a[1], (int64_t)a[2] * a[3], arena_len) &&
                         inside(a[4], 2 * (int64_t)a[3], film_len);
    case OP_ADD: return inside(a[1], a[3], arena_len) && inside(a[2], a[3], arena_len);
    case OP_CONCAT: {
        int64_t T = a[4], C1 = a[5], C2 = a[6];
        return T >= 0 && C1 >= 0 && C2 >= 0 && inside(a[1], T * (C1 + C2), arena_len) && inside(a[2], T * C1, arena_len) &&
               inside(a[3], T * C2, arena_len);
    }
    default: return 0;
    }
}

/* Runs the program on `batch` chunks, one after another. Every op is checked against the buffer sizes
 * first; the first one that is unknown or reaches outside them stops the call before anything runs:
 * returns 1 + its index (0: done). */
int takeover_unet_run(const int32_t *prog, int n_ops, const float *weights, int64_t weights_len, float *arena,
                      int64_t arena_len, const float *x, float *out, int64_t x_len, const float *film, int64_t film_len,
                      int batch) {
    for (int i = 0; i < n_ops; i++)
        if (!op_is_safe(prog + (size_t)i * OP_WORDS, weights_len, arena_len, x_len, film_len)) return 1 + i;
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * x_len;
        float *ob = out + (size_t)b * x_len;
        const float *fb = film + (size_t)b * film_len;
        for (int i = 0; i < n_ops; i++) {
            const int32_t *a = prog + (size_t)i * OP_WORDS;
            switch (a[0]) {
            case OP_COPY_IN: memcpy(arena + a[1], xb, sizeof(float) * a[2]); break;
            case OP_CONV: gemm(arena + a[1], a[6], a[3], a[4], weights + a[7], a[5], weights + a[8], arena + a[2], a[5]); break;
            case OP_NORM_MISH:
                group_norm_mish(arena + a[1], a[2], a[3], a[4], weights + a[5], weights + a[6], weights[a[7]]);
                break;
            case OP_FILM: {
                float *h = arena + a[1];
                int T = a[2], C = a[3];
                const float *scale = fb + a[4], *shift = fb + a[4] + C;
                for (int t = 0; t < T; t++)
                    for (int c = 0; c < C; c++) h[(size_t)t * C + c] = h[(size_t)t * C + c] * scale[c] + shift[c];
                break;
            }
            case OP_ADD: {
                float *d = arena + a[1];
                const float *s = arena + a[2];
                for (int j = 0; j < a[3]; j++) d[j] += s[j];
                break;
            }
            case OP_CONCAT: {
                int T = a[4], C1 = a[5], C2 = a[6];
                for (int t = 0; t < T; t++) {
                    memcpy(arena + a[1] + (size_t)t * (C1 + C2), arena + a[2] + (size_t)t * C1, sizeof(float) * C1);
                    memcpy(arena + a[1] + (size_t)t * (C1 + C2) + C1, arena + a[3] + (size_t)t * C2, sizeof(float) * C2);
                }
                break;
            }
            case OP_COPY_OUT: memcpy(ob, arena + a[1], sizeof(float) * a[2]); break;
            }
        }
    }
    return 0;
}

/* A position-sensitive checksum (Fletcher-style, 16 independent 32-bit lanes) of n byte ranges read
 * as 32-bit words (a trailing 1-3 bytes are added on their own): the U-Net keeps its copy of the
 * weights until this changes. Any single changed word changes its lane's first sum. */
uint64_t takeover_checksum(const void *const *ptrs, const int64_t *nbytes, int n) {
    uint32_t s1[16] = {0}, s2[16] = {0};
    uint64_t h = 0x84222325cbf29ce4ull;
    for (int k = 0; k < n; k++) {
        const unsigned char *p = ptrs[k];
        int64_t words = nbytes[k] / 4, i = 0;
        for (; i + 16 <= words; i += 16) {
            uint32_t w[16];
            memcpy(w, p + 4 * i, sizeof w);
            for (int l = 0; l < 16; l++) {
                s1[l] += w[l];
                s2[l] += s1[l];
            }
        }
        for (int64_t j = 4 * i; j < nbytes[k]; j++) h = (h ^ p[j]) * 0x100000001b3ull;  /* the last < 64 bytes */
        h = (h ^ (uint64_t)nbytes[k]) * 0x100000001b3ull;  /* where one range ends and the next begins */
    }
    for (int l = 0; l < 16; l++) h = (h ^ (((uint64_t)s2[l] << 32) | s1[l])) * 0x100000001b3ull;
    return h;
}
