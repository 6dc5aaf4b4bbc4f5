/* The LSTM cell of classification inference, fused: one pass over a time step's gates instead of NumPy's ~12.
 *
 * ``Classifier`` (classifier.py) runs each step as ``g = h @ w_hh`` (NumPy, BLAS) and then ``step`` here, which
 * adds each line's input row, applies the gates, and writes the new cell and hidden states. NumPy needs ~12
 * passes over memory for that; this is one, in registers, without the GIL. Optional: without a C compiler at
 * install time the same function runs in NumPy (classifier.py), and tests compare the two.
 *
 * Weights come in the packed ``exp_form`` (packed.py: ``ifog``): gate rows i, f, o hold -x and g holds -2x, so
 * each gate is 1 / (1 + exp(z)) and tanh(x) = 2 / (1 + exp(-2x)) - 1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for |x| <= 40 (callers clamp), vectorisable: Cody-Waite range reduction and Cephes' expf polynomial
 * (relative error ~2e-7), then 2^n built in the exponent bits. */
static inline float exp_clamped(float x) {
    const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  /* x - n ln 2, in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* exp(z) with z clamped to [-40, 40]: past that every gate below is saturated to float precision, and products
 * of two such exps stay finite. */
static inline float e40(float z) { return exp_clamped(z < -40.0f ? -40.0f : (z > 40.0f ? 40.0f : z)); }

/* One line of one direction: gates ``g`` (4H, h @ w_hh) plus the input row (``x``, or ``q`` times ``scale``),
 * cell ``c`` updated, output ``h`` written. With e = exp(z) of each exp-form gate, sigmoid = 1 / (1 + e) and
 * tanh = (1 - e) / (1 + e), so i * tanh(u) and o * tanh(cell) each take one division. */
#define CELL_BODY(ROW)                                                                     \
    for (Py_ssize_t j = 0; j < 4 * H; j++) g[j] += ROW;                                    \
    for (Py_ssize_t j = 0; j < H; j++) {                                                   \
        const float ei = e40(g[j]), ef = e40(g[H + j]), eo = e40(g[2 * H + j]);            \
        const float eu = e40(g[3 * H + j]);                                                \
        const float cn = c[j] / (1.0f + ef) + (1.0f - eu) / ((1.0f + eu) * (1.0f + ei));   \
        c[j] = cn;                                                                         \
        const float ec = e40(-2.0f * cn);                                                  \
        h[j] = (1.0f - ec) / ((1.0f + ec) * (1.0f + eo));                                  \
    }

#define DEFINE_CELLS(SUFFIX, ATTR)                                                                              \
    ATTR static void cell_f32##SUFFIX(float *restrict g, const float *restrict x, float *restrict c,           \
                                      float *restrict h, Py_ssize_t H) {                                       \
        CELL_BODY(x[j])                                                                                         \
    }                                                                                                           \
    ATTR static void cell_i8##SUFFIX(float *restrict g, const int8_t *restrict q, float scale, float *restrict c, \
                                     float *restrict h, Py_ssize_t H) {                                        \
        CELL_BODY(scale * (float)q[j])                                                                          \
    }

/* langid's bag sums: o += the rows of weight (R, L) at ids[a:b] (id 0 is no n-gram, its row all 0: skipped). */
#define DEFINE_BAG(SUFFIX, ATTR)                                                                                \
    ATTR static void bag_rows##SUFFIX(const float *restrict w, const int64_t *restrict ix, int64_t a, int64_t b, \
                                      float *restrict o, Py_ssize_t L) {                                        \
        for (int64_t k = a; k < b; k++) {                                                                       \
            if (!ix[k]) continue;                                                                               \
            const float *restrict row = w + ix[k] * L;                                                          \
            for (Py_ssize_t j = 0; j < L; j++) o[j] += row[j];                                                  \
        }                                                                                                       \
    }

DEFINE_CELLS(_base, )
DEFINE_BAG(_base, )
typedef void (*bag_fn)(const float *restrict, const int64_t *restrict, int64_t, int64_t, float *restrict,
                       Py_ssize_t);
static bag_fn bag_rows = bag_rows_base;
typedef void (*cell_f32_fn)(float *restrict, const float *restrict, float *restrict, float *restrict, Py_ssize_t);
typedef void (*cell_i8_fn)(float *restrict, const int8_t *restrict, float, float *restrict, float *restrict,
                           Py_ssize_t);
static cell_f32_fn cell_f32 = cell_f32_base;
static cell_i8_fn cell_i8 = cell_i8_base;

/* The same cells built for AVX2 + FMA, chosen at import where the CPU has them (about 3.5x faster than SSE2). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_CELLS 1
DEFINE_CELLS(_avx2, __attribute__((target("avx2,fma"))))
DEFINE_BAG(_avx2, __attribute__((target("avx2,fma"))))
#endif

static int need(int ok, const char *what) {
    if (!ok) PyErr_Format(PyExc_ValueError, "lstm_text.infer._cell: %s", what);
    return ok;
}

/* step(g, rows, scales, index, c, h): for each of the N = len(index) lines (both directions stacked),
 * g[n] += rows[index[n]] (times scales[index[n]] when rows are int8), then the LSTM cell updates c[n] and writes
 * h[n]. g: float32 (N, 4H), overwritten. rows: float32 or int8 (R, 4H). scales: float32 (R,) or None. index:
 * int64 (N,). c: float32 (N, H), updated. h: float32 (N, H), written. All C-contiguous. */
static PyObject *step(PyObject *self, PyObject *args) {
    Py_buffer g, rows, scales = {0}, index, c, h;
    PyObject *scales_obj;
    if (!PyArg_ParseTuple(args, "w*y*Oy*w*w*", &g, &rows, &scales_obj, &index, &c, &h)) return NULL;
    PyObject *ret = NULL;
    int have_scales = scales_obj != Py_None;
    if (have_scales && PyObject_GetBuffer(scales_obj, &scales, PyBUF_SIMPLE) < 0) goto done;
    const Py_ssize_t N = index.len / (Py_ssize_t)sizeof(int64_t);
    if (!need(N > 0 && index.len == N * (Py_ssize_t)sizeof(int64_t), "index must be int64 with a line or more")) goto done;
    const Py_ssize_t H = c.len / (N * (Py_ssize_t)sizeof(float));
    if (!need(H > 0 && c.len == N * H * (Py_ssize_t)sizeof(float) && h.len == c.len, "c and h must be float32 (N, H)"))
        goto done;
    if (!need(g.len == 4 * c.len, "g must be float32 (N, 4H)")) goto done;
    const Py_ssize_t esize = have_scales ? 1 : (Py_ssize_t)sizeof(float);
    const Py_ssize_t R = rows.len / (4 * H * esize);
    if (!need(rows.len == R * 4 * H * esize, "rows must be (R, 4H), float32 or int8 with scales")) goto done;
    if (have_scales && !need(scales.len == R * (Py_ssize_t)sizeof(float), "scales must be float32 (R,)")) goto done;
    const int64_t *ix = (const int64_t *)index.buf;
    for (Py_ssize_t n = 0; n < N; n++)
        if (!need(ix[n] >= 0 && ix[n] < R, "index out of range")) goto done;
    float *gp = (float *)g.buf, *cp = (float *)c.buf, *hp = (float *)h.buf;
    Py_BEGIN_ALLOW_THREADS
    if (have_scales) {
        const int8_t *q = (const int8_t *)rows.buf;
        const float *s = (const float *)scales.buf;
        for (Py_ssize_t n = 0; n < N; n++)
            cell_i8(gp + n * 4 * H, q + ix[n] * 4 * H, s[ix[n]], cp + n * H, hp + n * H, H);
    } else {
        const float *x = (const float *)rows.buf;
        for (Py_ssize_t n = 0; n < N; n++) cell_f32(gp + n * 4 * H, x + ix[n] * 4 * H, cp + n * H, hp + n * H, H);
    }
    Py_END_ALLOW_THREADS
    ret = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&g);
    PyBuffer_Release(&rows);
    if (have_scales && scales.obj) PyBuffer_Release(&scales);
    PyBuffer_Release(&index);
    PyBuffer_Release(&c);
    PyBuffer_Release(&h);
    return ret;
}

/* pool(h, H, t, lengths, last, mx, total): the top layer's pooling, one step at a time. h: float32 (D, B, H), the
 * step-t outputs of lines whose ``lengths`` (int64, B) exceed t; for those, mx = max(mx, h) and total += h, and
 * last = h at their final step. last, mx, total: float32 (D, B, H). */
static PyObject *pool(PyObject *self, PyObject *args) {
    Py_buffer h, lengths, last, mx, total;
    Py_ssize_t H, t;
    if (!PyArg_ParseTuple(args, "y*nny*w*w*w*", &h, &H, &t, &lengths, &last, &mx, &total)) return NULL;
    PyObject *ret = NULL;
    const Py_ssize_t B = lengths.len / (Py_ssize_t)sizeof(int64_t);
    if (!need(B > 0 && lengths.len == B * (Py_ssize_t)sizeof(int64_t), "lengths must be int64 (B,)")) goto done;
    if (!need(h.len == last.len && h.len == mx.len && h.len == total.len, "h, last, mx, total: one shape")) goto done;
    const Py_ssize_t DBH = h.len / (Py_ssize_t)sizeof(float);
    if (!need(H > 0 && DBH % (B * H) == 0, "h must be float32 (D, B, H)")) goto done;
    const int64_t *len = (const int64_t *)lengths.buf;
    const float *hp = (const float *)h.buf;
    float *lp = (float *)last.buf, *mp = (float *)mx.buf, *tp = (float *)total.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n = 0; n < DBH / H; n++) {
        const int64_t L = len[n % B];
        if (t >= L) continue;
        const float *x = hp + n * H;
        float *m = mp + n * H, *s = tp + n * H;
        for (Py_ssize_t j = 0; j < H; j++) {
            m[j] = x[j] > m[j] ? x[j] : m[j];
            s[j] += x[j];
        }
        if (t == L - 1) memcpy(lp + n * H, x, H * sizeof(float));
    }
    Py_END_ALLOW_THREADS
    ret = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&h);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&last);
    PyBuffer_Release(&mx);
    PyBuffer_Release(&total);
    return ret;
}

/* bag(weight, ids, offsets, out): sums of rows, one per bag (langid's hashed n-grams). weight: float32 (R, L).
 * ids: int64 (F,). offsets: int64 (N,), non-decreasing, each bag's first id (bag n ends where bag n + 1 starts,
 * the last at F). out: float32 (N, L), overwritten: out[n] = sum of weight[ids[k]] over bag n, id 0 skipped
 * (langid's "no n-gram", whose row is 0). */
static PyObject *bag(PyObject *self, PyObject *args) {
    Py_buffer w, ids, offsets, out;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &w, &ids, &offsets, &out)) return NULL;
    PyObject *ret = NULL;
    const Py_ssize_t F = ids.len / (Py_ssize_t)sizeof(int64_t), N = offsets.len / (Py_ssize_t)sizeof(int64_t);
    if (!need(ids.len == F * (Py_ssize_t)sizeof(int64_t) && offsets.len == N * (Py_ssize_t)sizeof(int64_t) && N > 0,
              "ids and offsets must be int64, a bag or more"))
        goto done;
    const Py_ssize_t L = out.len / (N * (Py_ssize_t)sizeof(float));
    if (!need(L > 0 && out.len == N * L * (Py_ssize_t)sizeof(float), "out must be float32 (N, L)")) goto done;
    const Py_ssize_t R = w.len / (L * (Py_ssize_t)sizeof(float));
    if (!need(w.len == R * L * (Py_ssize_t)sizeof(float), "weight must be float32 (R, L)")) goto done;
    const int64_t *ix = (const int64_t *)ids.buf, *off = (const int64_t *)offsets.buf;
    for (Py_ssize_t k = 0; k < F; k++)
        if (!need(ix[k] >= 0 && ix[k] < R, "ids out of range")) goto done;
    for (Py_ssize_t n = 0; n < N; n++)
        if (!need(off[n] >= 0 && off[n] <= F && (n == 0 || off[n] >= off[n - 1]), "offsets must rise within ids"))
            goto done;
    const float *wp = (const float *)w.buf;
    float *op = (float *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n = 0; n < N; n++) {
        float *o = op + n * L;
        memset(o, 0, L * sizeof(float));
        bag_rows(wp, ix, off[n], n + 1 < N ? off[n + 1] : F, o, L);
    }
    Py_END_ALLOW_THREADS
    ret = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    return ret;
}

static PyMethodDef methods[] = {
    {"step", step, METH_VARARGS, "step(g, rows, scales, index, c, h): one fused LSTM time step (see _cell.c)."},
    {"pool", pool, METH_VARARGS, "pool(h, H, t, lengths, last, mx, total): one step of the top layer's pooling."},
    {"bag", bag, METH_VARARGS, "bag(weight, ids, offsets, out): out[n] = the sum of weight's rows in bag n."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cell", "The fused LSTM cell of classification.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__cell(void) {
#ifdef HAVE_AVX2_CELLS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cell_f32 = cell_f32_avx2;
        cell_i8 = cell_i8_avx2;
        bag_rows = bag_rows_avx2;
    }
#endif
    return PyModule_Create(&module);
}
