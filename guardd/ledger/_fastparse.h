/* The internal header of guardd.ledger._fastparse: the types and small helpers its source files share, and the
 * functions each one offers the others (the files and their jobs are listed at the top of _fastparse.c).
 *
 * Shared functions are named fp_* and have hidden visibility, so only PyInit__fastparse is exported; everything
 * else is static to its file.
 */
#ifndef GUARDD_FASTPARSE_H
#define GUARDD_FASTPARSE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define FP_INTERNAL __attribute__((visibility("hidden")))
#else
#define FP_INTERNAL
#endif

typedef struct {
    const char *p;
    Py_ssize_t n; /* -1: null or absent */
} Span;

typedef struct {
    const char *ip, *fp; /* integer and fraction digits */
    int in, fn, ex;      /* ex: the exponent (0 without one) */
} Num;

typedef struct {
    int64_t ts;
    Span id, model, key, provider, labels, error;
    int has_cost;
    int64_t cost;
    int64_t tokens[4]; /* prompt, completion, reasoning, cached */
    int ok;            /* -1 null or absent, 0 false, 1 true */
    int has_latency;
    double latency;
    int status; /* 0: none */
} Line;

typedef struct {
    PyObject_HEAD
    int64_t top;        /* max_event_cost in pico-dollars */
    PyObject *series;   /* dict: the raw (model, key, provider, labels) text -> series id */
    PyObject *new_series, *line_key, *health_row;
} Scanner;

typedef struct {
    PyObject *rows, *tokens, *hours, *health, *out, *fp;
} Out;

static inline const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static inline int64_t digits(const char *p, int n) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

/* _fastparse_scan.c: 1 when the line [p, e) has the shape that file understands (L filled), else 0. */
FP_INTERNAL int fp_scan_line(const char *p, const char *e, Line *L);

/* _fastparse_convert.c: each gives 1 with its result set, or 0 to refuse the line. */
FP_INTERNAL int fp_rfc3339(Span s, int64_t *ms);
FP_INTERNAL int fp_unix_ms(const Num *n, int64_t *ms);
FP_INTERNAL int fp_pico(const Num *n, int64_t *cost);
FP_INTERNAL int fp_latency(const Num *n, const char *end, double *ms);

/* _fastparse_batch.c */
FP_INTERNAL int fp_accept(Scanner *self, const char *p, const char *e, Line *L, PyObject **sid, PyObject **error);
FP_INTERNAL int fp_commit(Scanner *self, Out *o, const Line *L, PyObject *sid, PyObject *error, const char *p,
                          const char *e, long long offset);

#endif
