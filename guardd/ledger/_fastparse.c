/* The C accelerator of the batch path of guardd.ledger.parse (optional: without it the Python path does the same).
 *
 * Scanner.scan() reads a block of ledger lines and adds to a Parsed batch, by itself, every line of the plain
 * canonical shape it fully understands, exactly as the Python batch path would: the row, the unpriced tokens, the
 * hour sums, and (through the Python callbacks the scanner holds) the event key of an id-less line, the series of
 * a new (model, key, provider, labels) and the health row. It never decides a rule of its own: a line it is not
 * certain about (any escape in a string, a non-ASCII id, an exponent, a negative number, a time without a zone, a
 * cost beyond pico-dollars or above the ceiling, a nested unknown field, a duplicate field, bad labels ...) stops
 * the scan, and the run of lines it would refuse is handed back to the Python path, which has the exact rules.
 * Lines are taken in order, so a later line with an earlier one's key replaces it as in Python.
 *
 * Accepted shape (JSON whitespace: space, tab, CR):
 *   line    = ws "{" ws member (ws "," ws member)* ws "}" ws          with "ts" among the members
 *   ts      = "YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]" | unix     (unix: digits[.digits], s or ms)
 *   cost    = null | decimal | "decimal"        (decimal: no sign, an exponent of at most 2 digits, below 10^6,
 *                                                 digits past the 12th decimal only zeros)
 *   tokens  = null | at most 18 digits;   status = null | 100..599;   ok = true | false | null
 *   latency = null | decimal of at most 15 digits;   id = null | printable ASCII without space, "@" or "k-"
 *   model, key, provider, error = null | string;   labels = null | object of scalars (checked by msgspec in
 *   Python the first time a text is seen);   never usage, response, performance or sessionId (even null)
 *   any other member: an ASCII string, a number without exponent, true, false or null.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HOUR_MS 3600000LL
#define SECONDS_UNTIL 100000000000LL /* as parse_ts: a Unix time below this is in seconds, else in ms */

typedef struct {
    const char *p;
    Py_ssize_t n; /* -1: null or absent */
} Span;

enum {
    M_TS, M_ID, M_MODEL, M_COST, M_PROMPT, M_COMPLETION, M_REASONING, M_CACHED, M_KEY, M_PROVIDER, M_LABELS,
    M_OK, M_LATENCY, M_STATUS, M_ERROR, M_USAGE, M_RESPONSE, M_PERFORMANCE, M_SESSION, M_UNKNOWN
};

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

/* ---- scanning one line ------------------------------------------------------------------------------------ */

static inline const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A string at p (at its opening quote) without escapes or control characters; ASCII only if asked. Its content
 * goes to s; returns the end (after the closing quote), or NULL to refuse. */
static const char *string(const char *p, const char *e, Span *s, int ascii) {
    const unsigned char *b = (const unsigned char *)p + 1, *q = memchr(b, '"', e - (const char *)b);
    unsigned bad = 0;
    if (!q) return NULL;
    /* Branch-free, so that the compiler vectorises it: an escaped quote leaves its backslash in the span. */
    if (ascii)
        for (const unsigned char *c = b; c < q; c++) bad |= ((unsigned char)(*c - 0x20) >= 0x60) | (*c == '\\');
    else
        for (const unsigned char *c = b; c < q; c++) bad |= (*c < 0x20) | (*c == '\\');
    if (bad) return NULL;
    s->p = (const char *)b;
    s->n = q - b;
    return (const char *)q + 1;
}

static int64_t digits(const char *p, int n);

typedef struct {
    const char *ip, *fp; /* integer and fraction digits */
    int in, fn, ex;      /* ex: the exponent (0 without one) */
} Num;

/* A JSON number without sign: (0|[1-9][0-9]*)(.[0-9]+)?, with an exponent ([eE][+-]?[0-9]{1,2}) only if
 * allowed. NULL to refuse. What follows it is checked by the caller. */
static const char *number_exp(const char *p, const char *e, Num *n, int exponent) {
    const char *q = p;
    if (q >= e || !is_digit(*q)) return NULL;
    if (*q == '0')
        q++;
    else
        while (q < e && is_digit(*q)) q++;
    if (q - p > 30) return NULL;
    n->ip = p;
    n->in = (int)(q - p);
    n->fp = NULL;
    n->fn = 0;
    if (q < e && *q == '.') {
        const char *f = ++q;
        while (q < e && is_digit(*q)) q++;
        if (q == f || q - f > 40) return NULL;
        n->fp = f;
        n->fn = (int)(q - f);
    }
    n->ex = 0;
    if (q < e && (*q == 'e' || *q == 'E')) {
        if (!exponent) return NULL;
        int sign = 1;
        if (++q < e && (*q == '+' || *q == '-')) sign = *q++ == '-' ? -1 : 1;
        const char *x = q;
        while (q < e && is_digit(*q)) q++;
        if (q == x || q - x > 2) return NULL;
        n->ex = sign * (int)digits(x, (int)(q - x));
    }
    if (q < e && is_digit(*q)) return NULL;
    return q;
}

static const char *number(const char *p, const char *e, Num *n) { return number_exp(p, e, n, 0); }

static int64_t digits(const char *p, int n) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + (p[i] - '0');
    return v;
}

static const char *literal(const char *p, const char *e, const char *word, int *value, int v) {
    size_t n = strlen(word);
    if ((size_t)(e - p) < n || memcmp(p, word, n) != 0) return NULL;
    *value = v;
    return p + n;
}

/* true, false or null: *value 1, 0 or -1. */
static const char *tribool(const char *p, const char *e, int *value) {
    if (p >= e) return NULL;
    if (*p == 't') return literal(p, e, "true", value, 1);
    if (*p == 'f') return literal(p, e, "false", value, 0);
    if (*p == 'n') return literal(p, e, "null", value, -1);
    return NULL;
}

static const char *null(const char *p, const char *e) {
    int v;
    if (p >= e || *p != 'n') return NULL;
    return literal(p, e, "null", &v, -1);
}

/* null or a string (s->n = -1 for null). */
static const char *text(const char *p, const char *e, Span *s, int ascii) {
    if (p < e && *p == '"') return string(p, e, s, ascii);
    s->n = -1;
    return null(p, e);
}

/* A scalar: a string (ASCII only if asked), a number with an optional minus and no exponent, true, false or null. */
static const char *scalar(const char *p, const char *e, int ascii) {
    Span s;
    Num n;
    int v;
    if (p >= e) return NULL;
    if (*p == '"') return string(p, e, &s, ascii);
    if (*p == '-') return number(p + 1, e, &n);
    if (is_digit(*p)) return number(p, e, &n);
    return tribool(p, e, &v);
}

static int days_in_month(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) return 29;
    return days[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d) { /* days since 1970-01-01 (H. Hinnant) */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two(const char *p, int *v) {
    if (!is_digit(p[0]) || !is_digit(p[1])) return 0;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

/* Unix ms of YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|±HH:MM] (no zone: UTC), as msgspec reads it (a fraction of more than six digits is
 * rounded there: refused here). 0 to refuse (also any time before 1970, whose hour would round the other way). */
static int rfc3339(Span s, int64_t *ms) {
    const char *p = s.p, *e = s.p + s.n;
    int y1, y2, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int64_t frac = 0;
    if (s.n < 20 || !two(p, &y1) || !two(p + 2, &y2) || p[4] != '-' || !two(p + 5, &mo) || p[7] != '-' ||
        !two(p + 8, &d) || p[10] != 'T' || !two(p + 11, &h) || p[13] != ':' || !two(p + 14, &mi) || p[16] != ':' ||
        !two(p + 17, &sec))
        return 0;
    int64_t y = y1 * 100 + y2;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59) return 0;
    p += 19;
    if (*p == '.') {
        const char *f = ++p;
        while (p < e && is_digit(*p)) p++;
        int n = (int)(p - f);
        if (n < 1 || n > 6) return 0;
        for (int i = 0; i < 3; i++) frac = frac * 10 + (i < n ? f[i] - '0' : 0);
    }
    if (p < e && *p == 'Z') {
        p++;
    } else if (p == e) {
        /* no zone: UTC, as both Python paths read it */
    } else if (e - p == 6 && (*p == '+' || *p == '-') && two(p + 1, &oh) && p[3] == ':' && two(p + 4, &om)) {
        if (oh > 23 || om > 59) return 0;
        sign = *p == '+' ? 1 : -1;
        p += 6;
    } else {
        return 0;
    }
    if (p != e) return 0;
    int64_t t = (((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec) * 1000 + frac;
    t -= sign * ((int64_t)oh * 60 + om) * 60000;
    if (t < 0) return 0;
    *ms = t;
    return 1;
}

/* Unix ms of a time given as a JSON number (seconds or milliseconds, a fraction read as decimal digits), as
 * guardd.ledger.times.raw_ms reads it. */
static int unix_ms(const Num *n, int64_t *ms) {
    if (n->in > 18) return 0;
    int64_t whole = digits(n->ip, n->in);
    if (whole >= SECONDS_UNTIL) {
        *ms = whole; /* int(Decimal) truncates the fraction */
        return 1;
    }
    int64_t frac = 0;
    for (int i = 0; i < 3; i++) frac = frac * 10 + (i < n->fn ? n->fp[i] - '0' : 0);
    *ms = whole * 1000 + frac;
    return 1;
}

/* Pico-dollars of a non-negative decimal (Decimal.scaleb(12) when that is a whole number): refused from 10^18 on,
 * or with a non-zero digit past the twelfth decimal (the Python path rounds those: its rule, not this file's). */
static int pico(const Num *n, int64_t *cost) {
    int count = n->in + n->fn, point = n->in + n->ex + 12; /* the digits, and where the pico-dollar point falls */
    int64_t v = 0;
    for (int i = 0; i < point; i++) {
        int d = i < n->in ? n->ip[i] - '0' : i < count ? n->fp[i - n->in] - '0' : 0;
        if (v > (INT64_MAX - 9) / 10) return 0;
        v = v * 10 + d;
        if (v >= 1000000000000000000LL) return 0;
    }
    for (int i = point < 0 ? 0 : point; i < count; i++)
        if ((i < n->in ? n->ip[i] : n->fp[i - n->in]) != '0') return 0;
    *cost = v;
    return 1;
}

static const char *labels(const char *p, const char *e, Span *s) {
    Span name;
    if (p < e && *p == 'n') {
        s->n = -1;
        return null(p, e);
    }
    if (p >= e || *p != '{') return NULL;
    const char *start = p;
    p = ws(p + 1, e);
    if (p < e && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= e || *p != '"' || !(p = string(p, e, &name, 0))) return NULL;
            p = ws(p, e);
            if (p >= e || *p != ':') return NULL;
            if (!(p = scalar(ws(p + 1, e), e, 0))) return NULL;
            p = ws(p, e);
            if (p < e && *p == ',') {
                p = ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') {
                p++;
                break;
            }
            return NULL;
        }
    }
    s->p = start;
    s->n = p - start;
    return p;
}

static int field_of(Span name) {
#define IS(word) (name.n == (Py_ssize_t)sizeof(word) - 1 && memcmp(name.p, word, sizeof(word) - 1) == 0)
    switch (name.p[0]) {
    case 't': return IS("ts") ? M_TS : M_UNKNOWN;
    case 'i': return IS("id") ? M_ID : M_UNKNOWN;
    case 'm': return IS("model") ? M_MODEL : M_UNKNOWN;
    case 'c':
        if (IS("cost")) return M_COST;
        if (IS("completion_tokens")) return M_COMPLETION;
        return IS("cached_tokens") ? M_CACHED : M_UNKNOWN;
    case 'p':
        if (IS("prompt_tokens")) return M_PROMPT;
        if (IS("provider")) return M_PROVIDER;
        return IS("performance") ? M_PERFORMANCE : M_UNKNOWN;
    case 'r':
        if (IS("reasoning_tokens")) return M_REASONING;
        return IS("response") ? M_RESPONSE : M_UNKNOWN;
    case 'k': return IS("key") ? M_KEY : M_UNKNOWN;
    case 'l':
        if (IS("labels")) return M_LABELS;
        return IS("latency_ms") ? M_LATENCY : M_UNKNOWN;
    case 'o': return IS("ok") ? M_OK : M_UNKNOWN;
    case 's':
        if (IS("status")) return M_STATUS;
        return IS("sessionId") ? M_SESSION : M_UNKNOWN;
    case 'e': return IS("error") ? M_ERROR : M_UNKNOWN;
    case 'u': return IS("usage") ? M_USAGE : M_UNKNOWN;
    default: return M_UNKNOWN;
    }
#undef IS
}

static const char *value(const char *p, const char *e, int f, Line *L) {
    Num n;
    Span s;
    int v;
    switch (f) {
    case M_TS:
        if (p < e && *p == '"') {
            if (!(p = string(p, e, &s, 1)) || !rfc3339(s, &L->ts)) return NULL;
            return p;
        }
        if (!(p = number(p, e, &n)) || !unix_ms(&n, &L->ts)) return NULL;
        return p;
    case M_ID:
        if (!(p = text(p, e, &L->id, 1))) return NULL;
        for (Py_ssize_t i = 0; i < L->id.n; i++) {
            char c = L->id.p[i];
            if (c <= ' ' || c > '~' || c == '@' || (c == 'k' && i + 1 < L->id.n && L->id.p[i + 1] == '-')) return NULL;
        }
        return p; /* an id that may hold a secret is keyed by the Python path */
    case M_MODEL: return text(p, e, &L->model, 0);
    case M_KEY: return text(p, e, &L->key, 0);
    case M_PROVIDER: return text(p, e, &L->provider, 0);
    case M_ERROR: return text(p, e, &L->error, 0);
    case M_LABELS: return labels(p, e, &L->labels);
    case M_COST:
        if (p < e && *p == 'n') return null(p, e);
        if (p < e && *p == '"') {
            if (!(p = string(p, e, &s, 1)) || s.n == 0) return NULL;
            const char *end = number_exp(s.p, s.p + s.n, &n, 1);
            if (end != s.p + s.n) return NULL;
        } else if (!(p = number_exp(p, e, &n, 1))) {
            return NULL;
        }
        if (!pico(&n, &L->cost)) return NULL;
        L->has_cost = 1;
        return p;
    case M_PROMPT:
    case M_COMPLETION:
    case M_REASONING:
    case M_CACHED:
        if (p < e && *p == 'n') return null(p, e);
        if (!(p = number(p, e, &n)) || n.fn || n.in > 18) return NULL;
        L->tokens[f - M_PROMPT] = digits(n.ip, n.in);
        return p;
    case M_OK:
        if (!(p = tribool(p, e, &v))) return NULL;
        L->ok = v;
        return p;
    case M_LATENCY: {
        if (p < e && *p == 'n') return null(p, e);
        if (!(p = number(p, e, &n)) || n.in + n.fn > 15) return NULL;
        /* At most 15 significant digits: exactly representable, so one correctly rounded division. */
        char buf[40];
        memcpy(buf, n.ip, p - n.ip);
        buf[p - n.ip] = 0;
        L->latency = PyOS_string_to_double(buf, NULL, NULL);
        if (L->latency == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        L->has_latency = 1;
        return p;
    }
    case M_STATUS:
        if (p < e && *p == 'n') return null(p, e);
        if (!(p = number(p, e, &n)) || n.fn || n.in != 3) return NULL;
        L->status = (int)digits(n.ip, 3);
        if (L->status < 100 || L->status > 599) return NULL;
        return p;
    case M_USAGE:
    case M_RESPONSE:
    case M_PERFORMANCE:
    case M_SESSION: return NULL; /* another format's marker, even null: the line path tells the format */
    default: return scalar(p, e, 1);
    }
}

/* 1 when the line [p, e) has the shape this file understands (L filled), else 0. */
static int scan_line(const char *p, const char *e, Line *L) {
    static const Span none = {NULL, -1};
    uint32_t seen = 0;
    Span name;
    L->id = L->model = L->key = L->provider = L->labels = L->error = none;
    L->has_cost = L->has_latency = 0;
    L->tokens[0] = L->tokens[1] = L->tokens[2] = L->tokens[3] = 0;
    L->ok = -1;
    L->status = 0;
    p = ws(p, e);
    if (p >= e || *p != '{') return 0;
    p = ws(p + 1, e);
    for (;;) {
        if (p >= e || *p != '"' || !(p = string(p, e, &name, 1)) || name.n == 0) return 0;
        p = ws(p, e);
        if (p >= e || *p != ':') return 0;
        p = ws(p + 1, e);
        int f = field_of(name);
        if (f != M_UNKNOWN) {
            if (seen & (1u << f)) return 0; /* msgspec keeps the last: the Python path's case */
            seen |= 1u << f;
        }
        if (!(p = value(p, e, f, L))) return 0;
        p = ws(p, e);
        if (p < e && *p == ',') {
            p = ws(p + 1, e);
            continue;
        }
        if (p < e && *p == '}') break;
        return 0;
    }
    return ws(p + 1, e) == e && (seen & (1u << M_TS));
}

/* ---- the scanner ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int64_t top;        /* max_event_cost in pico-dollars */
    PyObject *series;   /* dict: the raw (model, key, provider, labels) text -> series id */
    PyObject *new_series, *line_key, *health_row;
} Scanner;

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"top", "series", "new_series", "line_key", "health_row", NULL};
    PyObject *top, *series, *new_series, *line_key, *health_row;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOO", names, &PyLong_Type, &top, &PyDict_Type, &series,
                                     &new_series, &line_key, &health_row))
        return -1;
    int overflow;
    long long t = PyLong_AsLongLongAndOverflow(top, &overflow);
    if (t == -1 && PyErr_Occurred()) return -1;
    self->top = overflow > 0 ? INT64_MAX : overflow < 0 ? -1 : t;
    Py_INCREF(series);
    Py_XSETREF(self->series, series);
    Py_INCREF(new_series);
    Py_XSETREF(self->new_series, new_series);
    Py_INCREF(line_key);
    Py_XSETREF(self->line_key, line_key);
    Py_INCREF(health_row);
    Py_XSETREF(self->health_row, health_row);
    return 0;
}

static int Scanner_traverse(Scanner *self, visitproc visit, void *arg) {
    Py_VISIT(self->series);
    Py_VISIT(self->new_series);
    Py_VISIT(self->line_key);
    Py_VISIT(self->health_row);
    return 0;
}

static int Scanner_clear(Scanner *self) {
    Py_CLEAR(self->series);
    Py_CLEAR(self->new_series);
    Py_CLEAR(self->line_key);
    Py_CLEAR(self->health_row);
    return 0;
}

static void Scanner_dealloc(Scanner *self) {
    PyObject_GC_UnTrack(self);
    Scanner_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *str_or_none(Span s) {
    if (s.n < 0) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s.p, s.n, "strict");
}

static char *put(char *w, Span s) {
    if (s.n < 0) {
        *w++ = 'N';
        return w;
    }
    *w++ = 'S';
    memcpy(w, s.p, s.n);
    w += s.n;
    *w++ = '"'; /* never inside an unescaped string */
    return w;
}

/* The series id of the line (a new reference), None (a new reference) when its texts or labels are not
 * acceptable (the Python path says why), NULL on an error. */
static PyObject *series_of(Scanner *self, const Line *L) {
    static const char null_text[] = "null";
    Span labels = L->labels;
    if (labels.n < 0) {
        labels.p = null_text;
        labels.n = 4;
    }
    Py_ssize_t size = 3 * 2 + (L->model.n > 0 ? L->model.n : 0) + (L->key.n > 0 ? L->key.n : 0) +
                      (L->provider.n > 0 ? L->provider.n : 0) + labels.n;
    PyObject *skey = PyBytes_FromStringAndSize(NULL, size);
    if (!skey) return NULL;
    char *w = PyBytes_AS_STRING(skey);
    w = put(w, L->model);
    w = put(w, L->key);
    w = put(w, L->provider);
    memcpy(w, labels.p, labels.n);
    w += labels.n;
    if (_PyBytes_Resize(&skey, w - PyBytes_AS_STRING(skey)) < 0) return NULL;
    PyObject *sid = PyDict_GetItemWithError(self->series, skey);
    if (sid) {
        Py_DECREF(skey);
        Py_INCREF(sid);
        return sid;
    }
    if (PyErr_Occurred()) goto fail;
    PyObject *model = str_or_none(L->model), *key = model ? str_or_none(L->key) : NULL;
    PyObject *provider = key ? str_or_none(L->provider) : NULL;
    PyObject *raw = provider ? PyBytes_FromStringAndSize(labels.p, labels.n) : NULL;
    if (!raw) {
        Py_XDECREF(model);
        Py_XDECREF(key);
        Py_XDECREF(provider);
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) goto fail;
        PyErr_Clear();
        Py_DECREF(skey);
        Py_RETURN_NONE;
    }
    sid = PyObject_CallFunctionObjArgs(self->new_series, model, key, provider, raw, NULL);
    Py_DECREF(model);
    Py_DECREF(key);
    Py_DECREF(provider);
    Py_DECREF(raw);
    if (!sid) goto fail;
    if (sid != Py_None && PyDict_SetItem(self->series, skey, sid) < 0) {
        Py_DECREF(sid);
        goto fail;
    }
    Py_DECREF(skey);
    return sid;
fail:
    Py_DECREF(skey);
    return NULL;
}

/* entry[i] += by, for an hour entry (a list of Python ints). */
static int add_at(PyObject *entry, Py_ssize_t i, int64_t by) {
    PyObject *old = PyList_GET_ITEM(entry, i), *sum;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(old, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow && !((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by))) {
        sum = PyLong_FromLongLong(v + by);
    } else {
        PyObject *inc = PyLong_FromLongLong(by);
        if (!inc) return -1;
        sum = PyNumber_Add(old, inc);
        Py_DECREF(inc);
    }
    if (!sum) return -1;
    PyList_SET_ITEM(entry, i, sum);
    Py_DECREF(old);
    return 0;
}

typedef struct {
    PyObject *rows, *tokens, *hours, *health, *out, *fp;
} Out;

/* Add an accepted line (its stripped text [p, e), at file offset `offset`) to the batch. 0, or -1 on an error. */
static int commit(Scanner *self, Out *o, const Line *L, PyObject *sid, PyObject *error, const char *p,
                  const char *e, long long offset) {
    PyObject *k = NULL, *ts = NULL, *cost = NULL, *tok[4] = {NULL, NULL, NULL, NULL}, *row = NULL;
    PyObject *hk = NULL, *entry = NULL;
    int rc = -1;
    if (L->id.n > 0) {
        k = PyUnicode_New(L->id.n + 2, 127);
        if (!k) goto done;
        char *w = (char *)PyUnicode_1BYTE_DATA(k);
        w[0] = 'g';
        w[1] = ':';
        memcpy(w + 2, L->id.p, L->id.n);
    } else {
        PyObject *data = PyBytes_FromStringAndSize(p, e - p), *at = PyLong_FromLongLong(offset);
        if (data && at) k = PyObject_CallFunctionObjArgs(self->line_key, data, o->fp, at, NULL);
        Py_XDECREF(data);
        Py_XDECREF(at);
        if (!k) goto done;
    }
    int dup = PyDict_Contains(o->rows, k);
    if (dup < 0) goto done;
    if (dup) {
        PyObject *r = PyObject_CallMethod(o->out, "drop", "O", k);
        if (!r) goto done;
        Py_DECREF(r);
    }
    if (!(ts = PyLong_FromLongLong(L->ts))) goto done;
    if (L->has_cost) {
        if (!(cost = PyLong_FromLongLong(L->cost))) goto done;
    } else {
        cost = Py_NewRef(Py_None);
    }
    for (int i = 0; i < 4; i++)
        if (!(tok[i] = PyLong_FromLongLong(L->tokens[i]))) goto done;
    if (!(row = PyTuple_Pack(8, k, ts, sid, cost, tok[0], tok[1], tok[2], tok[3]))) goto done;
    if (PyDict_SetItem(o->rows, k, row) < 0) goto done;
    if (L->ok == 0 || L->has_latency || L->status || error) {
        PyObject *okv = L->ok < 0 ? Py_None : L->ok ? Py_True : Py_False;
        PyObject *st = L->status ? PyLong_FromLong(L->status) : Py_NewRef(Py_None);
        PyObject *lat = L->has_latency ? PyFloat_FromDouble(L->latency) : Py_NewRef(Py_None);
        PyObject *h = NULL;
        if (st && lat)
            h = PyObject_CallFunctionObjArgs(self->health_row, k, ts, sid, okv, st, lat, error ? error : Py_None,
                                             NULL);
        Py_XDECREF(st);
        Py_XDECREF(lat);
        if (!h) goto done;
        int bad = PyDict_SetItem(o->health, k, h);
        Py_DECREF(h);
        if (bad < 0) goto done;
    }
    PyObject *hour = PyLong_FromLongLong(L->ts / HOUR_MS);
    if (!hour) goto done;
    hk = PyTuple_Pack(2, hour, sid);
    Py_DECREF(hour);
    if (!hk) goto done;
    entry = PyDict_GetItemWithError(o->hours, hk);
    if (entry) {
        if (!PyList_CheckExact(entry) || PyList_GET_SIZE(entry) != 7) {
            PyErr_SetString(PyExc_TypeError, "an hour entry is not a list of 7");
            entry = NULL;
            goto done;
        }
        Py_INCREF(entry);
        if (L->has_cost ? add_at(entry, 0, L->cost) : add_at(entry, 2, 1)) goto done;
        if (add_at(entry, 1, 1)) goto done;
        for (int i = 0; i < 4; i++)
            if (L->tokens[i] && add_at(entry, 3 + i, L->tokens[i])) goto done;
    } else {
        if (PyErr_Occurred()) goto done;
        PyObject *zero = PyLong_FromLong(0), *one = PyLong_FromLong(1);
        entry = PyList_New(7);
        if (!entry) goto done;
        PyList_SET_ITEM(entry, 0, L->has_cost ? Py_NewRef(cost) : Py_NewRef(zero));
        PyList_SET_ITEM(entry, 1, Py_NewRef(one));
        PyList_SET_ITEM(entry, 2, L->has_cost ? Py_NewRef(zero) : Py_NewRef(one));
        for (int i = 0; i < 4; i++) PyList_SET_ITEM(entry, 3 + i, Py_NewRef(tok[i]));
        Py_DECREF(zero);
        Py_DECREF(one);
        if (PyDict_SetItem(o->hours, hk, entry) < 0) goto done;
    }
    if (!L->has_cost) {
        PyObject *t = PyTuple_Pack(5, k, tok[0], tok[1], tok[2], tok[3]);
        if (!t) goto done;
        int bad = PyDict_SetItem(o->tokens, k, t);
        Py_DECREF(t);
        if (bad < 0) goto done;
    }
    rc = 0;
done:
    Py_XDECREF(k);
    Py_XDECREF(ts);
    Py_XDECREF(cost);
    for (int i = 0; i < 4; i++) Py_XDECREF(tok[i]);
    Py_XDECREF(row);
    Py_XDECREF(hk);
    Py_XDECREF(entry);
    return rc;
}

/* Check the line [p, e): 1 when accepted (*sid and *error new references; *error NULL without an error text),
 * 0 when it is the Python path's, -1 on an error. */
static int accept(Scanner *self, const char *p, const char *e, Line *L, PyObject **sid, PyObject **error) {
    *sid = *error = NULL;
    if (!scan_line(p, e, L)) return 0;
    if (L->has_cost && L->cost > self->top) return 0;
    if (L->error.n >= 0) {
        *error = PyUnicode_DecodeUTF8(L->error.p, L->error.n, "strict");
        if (!*error) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return -1;
            PyErr_Clear();
            return 0;
        }
    }
    *sid = series_of(self, L);
    if (*sid && *sid != Py_None) return 1;
    Py_CLEAR(*error);
    if (!*sid) return -1;
    Py_CLEAR(*sid);
    return 0;
}

static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    /* Scanner.__new__(Scanner) without __init__ (or a subclass whose __init__ skips it) leaves these NULL: the
       first accepted line would dereference them. Refuse instead of crashing the process. */
    if (!self->series || !self->new_series || !self->line_key || !self->health_row) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner.__init__ was not called");
        return NULL;
    }
    Py_buffer buf;
    Py_ssize_t pos;
    long long base;
    Out o = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (!PyArg_ParseTuple(args, "y*nLUO", &buf, &pos, &base, &o.fp, &o.out)) return NULL;
    const char *data = buf.buf, *end = data + buf.len;
    Py_ssize_t count = 0, stop = -1, resume = buf.len;
    PyObject *result = NULL;
    if (pos < 0 || pos > buf.len) {
        PyErr_SetString(PyExc_ValueError, "pos is outside the block");
        goto done;
    }
    if (!(o.rows = PyObject_GetAttrString(o.out, "rows")) || !(o.tokens = PyObject_GetAttrString(o.out, "tokens")) ||
        !(o.hours = PyObject_GetAttrString(o.out, "hours")) || !(o.health = PyObject_GetAttrString(o.out, "health")))
        goto done;
    if (!PyDict_CheckExact(o.rows) || !PyDict_CheckExact(o.tokens) || !PyDict_CheckExact(o.hours) ||
        !PyDict_CheckExact(o.health)) {
        PyErr_SetString(PyExc_TypeError, "the batch's rows, tokens, hours and health must be dicts");
        goto done;
    }
    for (const char *p = data + pos; p < end;) {
        const char *nl = memchr(p, '\n', end - p), *e = nl ? nl : end, *next = nl ? nl + 1 : end;
        Line L;
        PyObject *sid, *error;
        int ok = accept(self, p, e, &L, &sid, &error);
        if (ok < 0) goto done;
        if (stop >= 0) { /* in a run of refused lines: it ends at the first accepted one */
            Py_XDECREF(sid);
            Py_XDECREF(error);
            if (ok) {
                resume = p - data;
                break;
            }
        } else if (!ok) {
            stop = p - data;
        } else {
            const char *s = ws(p, e), *t = e; /* the stripped line: what an id-less line's key hashes */
            while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r')) t--;
            int bad = commit(self, &o, &L, sid, error, s, t, base + (p - data));
            Py_DECREF(sid);
            Py_XDECREF(error);
            if (bad) goto done;
            count++;
        }
        p = next;
    }
    if (stop < 0) stop = resume = buf.len;
    result = Py_BuildValue("nnn", count, stop, resume);
done:
    PyBuffer_Release(&buf);
    Py_XDECREF(o.rows);
    Py_XDECREF(o.tokens);
    Py_XDECREF(o.hours);
    Py_XDECREF(o.health);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(data, pos, base, fp, out) -> (count, stop, resume)\n\n"
     "Add the lines of data from pos (data at file offset base, of the file with fingerprint fp) to the batch out, "
     "in order, until a line this scanner does not take: count lines were added; data[stop:resume] is a run of "
     "lines for the Python path, then scan again from resume. stop == resume == len(data) when all were added."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "guardd.ledger._fastparse.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Scanner(top, series, new_series, line_key, health_row): the batch path for plain canonical lines.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_traverse = (traverseproc)Scanner_traverse,
    .tp_clear = (inquiry)Scanner_clear,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastparse", "The C accelerator of guardd.ledger.parse's batch path.", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastparse(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
