/* The JSON scanning of one ledger line for guardd.ledger._fastparse (see _fastparse.h for the other files).
 *
 * fp_scan_line() checks that a line has the plain canonical shape below and fills a Line with its spans and values
 * (times, costs and latencies converted by _fastparse_convert.c). It creates no Python object and never decides a
 * rule of its own: any line outside this shape is refused (0), and Scanner.scan hands it to the Python path.
 *
 * Accepted shape (JSON whitespace: space, tab, CR):
 *   line    = ws "{" ws member (ws "," ws member)* ws "}" ws          with "ts" among the members
 *   ts      = "YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]" | unix     (unix: digits[.digits], s or ms)
 *             from 2000-01-01 to before 2100-01-01 UTC (anything else is the line path's, which quarantines it)
 *   cost    = null | decimal | "decimal"        (decimal: no sign, an exponent of at most 2 digits, below 10^6,
 *                                                 digits past the 12th decimal only zeros)
 *   tokens  = null | at most 18 digits;   status = null | 100..599;   ok = true | false | null
 *   latency = null | decimal of at most 15 digits;   id = null | printable ASCII without space, "@" or "k-"
 *   model, key, provider, error = null | string;   labels = null | object of scalars (checked by msgspec in
 *   Python the first time a text is seen);   never usage, response, performance or sessionId (even null)
 *   any other member: an ASCII string, a number without exponent, true, false or null.
 */
#include "_fastparse.h"

#define TS_MIN_MS 946684800000LL  /* as guardd.core.usage.TS_MIN_MS: 2000-01-01T00:00:00Z */
#define TS_END_MS 4102444800000LL /* as guardd.core.usage.TS_END_MS: 2100-01-01T00:00:00Z, excluded */

enum {
    M_TS, M_ID, M_MODEL, M_COST, M_PROMPT, M_COMPLETION, M_REASONING, M_CACHED, M_KEY, M_PROVIDER, M_LABELS,
    M_OK, M_LATENCY, M_STATUS, M_ERROR, M_USAGE, M_RESPONSE, M_PERFORMANCE, M_SESSION, M_UNKNOWN
};

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
            if (!(p = string(p, e, &s, 1)) || !fp_rfc3339(s, &L->ts)) return NULL;
        } else if (!(p = number(p, e, &n)) || !fp_unix_ms(&n, &L->ts)) {
            return NULL;
        }
        return L->ts >= TS_MIN_MS && L->ts < TS_END_MS ? p : NULL; /* implausible: the line path says why */
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
        if (!fp_pico(&n, &L->cost)) return NULL;
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
    case M_LATENCY:
        if (p < e && *p == 'n') return null(p, e);
        if (!(p = number(p, e, &n)) || !fp_latency(&n, p, &L->latency)) return NULL;
        L->has_latency = 1;
        return p;
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
int fp_scan_line(const char *p, const char *e, Line *L) {
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
