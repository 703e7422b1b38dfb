/* The exact conversions of guardd.ledger._fastparse (see _fastparse.h): a scanned time text or number to Unix
 * milliseconds, a decimal cost to pico-dollars, a latency to a float, each exactly as the Python path reads it.
 * Each returns 1 with its result set, or 0 to refuse the line (which then goes to the Python path).
 */
#include "_fastparse.h"

#define SECONDS_UNTIL 100000000000LL /* as parse_ts: a Unix time below this is in seconds, else in ms */

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

/* Unix ms of YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|±HH:MM] (no zone: UTC), as msgspec reads it (a fraction of more than
 * six digits is rounded there: refused here). 0 to refuse (also any time before 1970, whose hour would round the
 * other way). */
int fp_rfc3339(Span s, int64_t *ms) {
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
int fp_unix_ms(const Num *n, int64_t *ms) {
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
int fp_pico(const Num *n, int64_t *cost) {
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

/* A latency in ms: the JSON number n, whose text ends at end (no exponent). */
int fp_latency(const Num *n, const char *end, double *ms) {
    if (n->in + n->fn > 15) return 0;
    /* At most 15 significant digits: exactly representable, so one correctly rounded division. */
    char buf[40];
    memcpy(buf, n->ip, end - n->ip);
    buf[end - n->ip] = 0;
    *ms = PyOS_string_to_double(buf, NULL, NULL);
    if (*ms == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}
