/* The C builder of the COPY text a batch is written into PostgreSQL with (guardd/store/postgres/copytext.py).
 *
 * copy_text(rows, instance) and rollup_text(hours) return exactly the bytes their Python references
 * (copytext.py_copy_text and copytext.py_rollup_text) return, byte for byte: the Python code is the contract,
 * this file only does the same work without a Python object per field. A hypothesis property test holds the two
 * identical (tests/store/test_copytext.py).
 *
 * Why C: building the text was ~2.9 of the ~3.2 µs of client CPU a line of PgEventStore.write_batch, most of it
 * Python's per-row overhead (an md5 object, a bytes object, a slice and an int a row for the key hash; an f-string
 * and its parts a row for the line).
 *
 * The key hash is md5's first 8 bytes, taken with OpenSSL's EVP interface (the library Python's own hashlib uses),
 * fetched once with the property "-fips" as hashlib does for usedforsecurity=False: it names rows, it guards no
 * secret. copy_text reads every field out of the Python objects first, holding a reference to each row so that
 * its strings stay alive, then hashes, formats and sorts without the GIL (the batch is built in a thread beside the
 * event loop, which keeps serving), then takes the GIL again only to make the bytes object and to let go of the rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
static EVP_MD *md5_md = NULL; /* fetched once; shared read-only by every thread */
#else
static const EVP_MD *md5_md = NULL;
#endif

/* A context ready for a new digest (EVP_DigestInit_ex2 keeps the fetched md5 of the last one: ≈ 500 instructions a
 * key less than EVP_DigestInit_ex under OpenSSL 3). */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define MD5_INIT(ctx) EVP_DigestInit_ex2((ctx), md5_md, NULL)
#else
#define MD5_INIT(ctx) EVP_DigestInit_ex((ctx), md5_md, NULL)
#endif

/* Rows up to this many are built holding the GIL: releasing and taking it again costs more than it lets run. */
#define RELEASE_GIL_ROWS 512

/* ---- text helpers ------------------------------------------------------------------------------------------ */

/* The length of ``s`` escaped as COPY's text format requires of guardd's free text (copytext._escaped): a
 * backslash, tab, newline or carriage return becomes a backslash and a letter; every other byte stays. */
static Py_ssize_t escaped_len(const char *s, Py_ssize_t n) {
    Py_ssize_t extra = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        extra += (c == '\\') | (c == '\t') | (c == '\n') | (c == '\r');
    }
    return n + extra;
}

static char *put_escaped(char *out, const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\': *out++ = '\\'; *out++ = '\\'; break;
        case '\t': *out++ = '\\'; *out++ = 't'; break;
        case '\n': *out++ = '\\'; *out++ = 'n'; break;
        case '\r': *out++ = '\\'; *out++ = 'r'; break;
        default: *out++ = c;
        }
    }
    return out;
}

static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                            "8081828384858687888990919293949596979899";

/* Decimal digits of v, with its sign, into out (at least 20 bytes); return how many. Two digits a step, from a
 * table: the key hash, time and series of every line are 13 to 20 digits long. */
static int format_int(char *out, int64_t v) {
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int sign = v < 0, digits = 1;
    if (u >= 10000000000000000ULL) { /* most hashes: 17 to 20 digits */
        digits = 17 + (u >= 100000000000000000ULL) + (u >= 1000000000000000000ULL) + (u >= 10000000000000000000ULL);
    } else {
        for (uint64_t bound = 10; u >= bound; bound *= 10) digits++;
    }
    if (sign) *out = '-';
    char *end = out + sign + digits;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100) * 2;
        u /= 100;
        *--end = PAIRS[pair + 1];
        *--end = PAIRS[pair];
    }
    if (u >= 10) {
        *--end = PAIRS[u * 2 + 1];
        *--end = PAIRS[u * 2];
    } else {
        *--end = (char)('0' + u);
    }
    return sign + digits;
}

/* A field of a line: an int that fits 64 bits (printed here), the UTF-8 of format(value, '') for anything else
 * (an int beyond 64 bits, an int subclass such as bool: what an f-string prints), or \N (an unpriced cost). */
typedef struct {
    int64_t num;
    const char *text; /* NULL: num */
    Py_ssize_t len;
    int null;
} Field;

/* Read ``value`` into ``f``; a formatted value is appended to ``held`` (kept alive while ``f`` points into it).
 * Return 0, or -1 with an exception set. */
static int read_field(PyObject *value, Field *f, PyObject *held) {
    f->text = NULL;
    f->null = 0;
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (!overflow) {
            f->num = v;
            return 0;
        }
    }
    PyObject *empty = PyUnicode_FromStringAndSize("", 0);
    if (!empty) return -1;
    PyObject *text = PyObject_Format(value, empty);
    Py_DECREF(empty);
    if (!text) return -1;
    int failed = PyList_Append(held, text);
    Py_DECREF(text);
    if (failed) return -1;
    f->text = PyUnicode_AsUTF8AndSize(text, &f->len);
    return f->text ? 0 : -1;
}

/* The most bytes ``f`` takes in a line. */
static Py_ssize_t field_room(const Field *f) { return f->text ? f->len : 20; }

static char *put_field(char *out, const Field *f) {
    if (f->text) {
        memcpy(out, f->text, (size_t)f->len);
        return out + f->len;
    }
    return out + format_int(out, f->num);
}

/* ---- copy_text ---------------------------------------------------------------------------------------------- */

typedef struct {
    PyObject *row; /* the row as a tuple, held (its key's UTF-8 stays where ``key`` points) */
    const char *key; /* UTF-8 of the batch key; its stored key is key itself or prefix + key[skip:] */
    Py_ssize_t key_len;
    Py_ssize_t skip; /* -1: a g: or s: key, stored as it is */
    Field ts, series, cost;
    Py_ssize_t at, len; /* where its line is in the scratch text, and how long */
} Line;

typedef struct {
    uint64_t order; /* the key hash with its sign bit flipped: unsigned order is the signed hash's order */
    Py_ssize_t index;
} Order;

/* Sort ``o`` by ``order``, keeping the order of equal ones (as Python's sort): a radix sort, a byte a pass, least
 * significant first, skipping the bytes all hashes share. ``tmp`` holds n more. Return the sorted array (o or
 * tmp). ≈ 10 instructions a row a pass, against ≈ 700 a row for qsort's comparisons through a callback. */
static Order *radix_sort(Order *o, Order *tmp, Py_ssize_t n) {
    Py_ssize_t counts[8][256];
    memset(counts, 0, sizeof(counts));
    for (Py_ssize_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) counts[b][(o[i].order >> (8 * b)) & 0xFF]++;
    for (int b = 0; b < 8; b++) {
        Py_ssize_t *c = counts[b], at = 0;
        if (c[(o[0].order >> (8 * b)) & 0xFF] == n) continue; /* one value of this byte: already in order */
        for (int v = 0; v < 256; v++) {
            Py_ssize_t k = c[v];
            c[v] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++) tmp[c[(o[i].order >> (8 * b)) & 0xFF]++] = o[i];
        Order *swap = o;
        o = tmp;
        tmp = swap;
    }
    return o;
}

/* Bytes of the first two code points of the UTF-8 ``s`` (the ``k[2:]`` of a line hash key), fewer if shorter. */
static Py_ssize_t two_code_points(const char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (int points = 0; points < 2 && i < n; points++) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

typedef struct {
    const char *raw; /* "h:<instance>:", hashed as it is */
    Py_ssize_t raw_len;
    char *escaped; /* the same, escaped: what the line holds */
    Py_ssize_t escaped_len;
    char *tail; /* "\t<instance escaped>\n" */
    Py_ssize_t tail_len;
} Affixes;

/* The most bytes the line of ``l`` takes (a key byte escapes to two at most). */
static Py_ssize_t line_room(const Line *l, const Affixes *a) {
    Py_ssize_t rest = l->skip < 0 ? l->key_len : l->key_len - l->skip;
    return 20 + 1 + (l->skip >= 0 ? a->escaped_len : 0) + 2 * rest + 1 + field_room(&l->ts) + 1 +
           field_room(&l->series) + 1 + (l->cost.null ? 2 : field_room(&l->cost) + 4) + a->tail_len;
}

/* Hash every line's stored key and write the line into ``scratch`` (room enough: line_room each), in the rows'
 * order; fill ``order`` with the hashes and sort it. No Python object is touched: runs without the GIL. Return the
 * sorted order (order or tmp), or NULL when OpenSSL failed. */
static Order *build_lines(Line *lines, Order *order, Order *tmp, Py_ssize_t n, const Affixes *a, char *scratch) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return NULL;
    char *out = scratch;
    for (Py_ssize_t i = 0; i < n; i++) {
        Line *l = &lines[i];
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digest_len = 0;
        const char *rest = l->skip < 0 ? l->key : l->key + l->skip;
        Py_ssize_t rest_len = l->skip < 0 ? l->key_len : l->key_len - l->skip;
        if (!MD5_INIT(ctx) || (l->skip >= 0 && !EVP_DigestUpdate(ctx, a->raw, (size_t)a->raw_len)) ||
            !EVP_DigestUpdate(ctx, rest, (size_t)rest_len) || !EVP_DigestFinal_ex(ctx, digest, &digest_len) ||
            digest_len < 8) {
            EVP_MD_CTX_free(ctx);
            return NULL;
        }
        uint64_t h = 0;
        for (int b = 0; b < 8; b++) h = (h << 8) | digest[b];
        order[i].order = h ^ ((uint64_t)1 << 63);
        order[i].index = i;
        l->at = out - scratch;
        out += format_int(out, (int64_t)h);
        *out++ = '\t';
        if (l->skip >= 0) {
            memcpy(out, a->escaped, (size_t)a->escaped_len);
            out += a->escaped_len;
        }
        out = put_escaped(out, rest, rest_len);
        *out++ = '\t';
        out = put_field(out, &l->ts);
        *out++ = '\t';
        out = put_field(out, &l->series);
        *out++ = '\t';
        if (l->cost.null) {
            *out++ = '\\';
            *out++ = 'N';
        } else {
            out = put_field(out, &l->cost);
            memcpy(out, "e-12", 4);
            out += 4;
        }
        memcpy(out, a->tail, (size_t)a->tail_len);
        out += a->tail_len;
        l->len = out - scratch - l->at;
    }
    EVP_MD_CTX_free(ctx);
    return radix_sort(order, tmp, n);
}

/* Copy the lines of ``scratch`` into ``out`` in ``order``. Runs without the GIL. */
static void copy_lines(char *out, const Line *lines, const Order *order, Py_ssize_t n, const char *scratch) {
    for (Py_ssize_t j = 0; j < n; j++) {
        const Line *l = &lines[order[j].index];
        memcpy(out, scratch + l->at, (size_t)l->len);
        out += l->len;
    }
}

/* Read one row (any 8-item iterable) into ``l``, holding it in ``l->row`` (NULL when it is not read); values
 * formatted as text are appended to ``held``. Return 0 or -1. */
static int read_row(PyObject *row, Line *l, PyObject *held) {
    PyObject *tuple = PyTuple_Check(row) ? (Py_INCREF(row), row) : PySequence_Tuple(row);
    l->row = tuple;
    if (!tuple) return -1;
    if (PyTuple_GET_SIZE(tuple) != 8) {
        PyErr_Format(PyExc_ValueError, "a row has 8 fields (key, ts, series, cost and 4 token counts), not %zd",
                     PyTuple_GET_SIZE(tuple));
        return -1;
    }
    PyObject *key = PyTuple_GET_ITEM(tuple, 0);
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "an event key is a str, not %.100s", Py_TYPE(key)->tp_name);
        return -1;
    }
    l->key = PyUnicode_AsUTF8AndSize(key, &l->key_len);
    if (!l->key) return -1;
    int global = l->key_len >= 2 && (l->key[0] == 'g' || l->key[0] == 's') && l->key[1] == ':';
    l->skip = global ? -1 : two_code_points(l->key, l->key_len);
    if (read_field(PyTuple_GET_ITEM(tuple, 1), &l->ts, held) || read_field(PyTuple_GET_ITEM(tuple, 2), &l->series, held))
        return -1;
    PyObject *cost = PyTuple_GET_ITEM(tuple, 3);
    if (cost == Py_None) {
        l->cost.null = 1;
        l->cost.text = NULL;
        return 0;
    }
    return read_field(cost, &l->cost, held);
}

static int make_affixes(PyObject *instance, Affixes *a) {
    Py_ssize_t n;
    const char *inst = PyUnicode_AsUTF8AndSize(instance, &n);
    if (!inst) return -1;
    char *raw = PyMem_Malloc((size_t)n + 3);
    Py_ssize_t esc = escaped_len(inst, n);
    a->escaped = PyMem_Malloc((size_t)esc + 3);
    a->tail = PyMem_Malloc((size_t)esc + 2);
    if (!raw || !a->escaped || !a->tail) {
        PyMem_Free(raw);
        PyErr_NoMemory();
        return -1;
    }
    raw[0] = 'h', raw[1] = ':';
    memcpy(raw + 2, inst, (size_t)n);
    raw[n + 2] = ':';
    a->raw = raw;
    a->raw_len = n + 3;
    a->escaped[0] = 'h', a->escaped[1] = ':';
    put_escaped(a->escaped + 2, inst, n);
    a->escaped[esc + 2] = ':';
    a->escaped_len = esc + 3;
    a->tail[0] = '\t';
    put_escaped(a->tail + 1, inst, n);
    a->tail[esc + 1] = '\n';
    a->tail_len = esc + 2;
    return 0;
}

static PyObject *copy_text(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *rows, *instance;
    if (!PyArg_ParseTuple(args, "OU:copy_text", &rows, &instance)) return NULL;
    PyObject *it = PyObject_GetIter(rows);
    if (!it) return NULL;
    PyObject *held = PyList_New(0), *result = NULL, *row;
    Affixes a = {NULL, 0, NULL, 0, NULL, 0};
    Py_ssize_t n = 0, cap = 0;
    Line *lines = NULL;
    Order *order = NULL;
    char *scratch = NULL;
    if (!held) goto done;
    while ((row = PyIter_Next(it))) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            Line *more = PyMem_Realloc(lines, (size_t)cap * sizeof(Line));
            if (!more) {
                Py_DECREF(row);
                PyErr_NoMemory();
                goto done;
            }
            lines = more;
        }
        int failed = read_row(row, &lines[n], held);
        Py_DECREF(row);
        n += lines[n].row != NULL; /* held: let go of at the end */
        if (failed) goto done;
    }
    if (PyErr_Occurred()) goto done;
    if (n == 0) {
        result = PyBytes_FromStringAndSize("", 0);
        goto done;
    }
    if (make_affixes(instance, &a)) goto done; /* after the rows: no row, no text, whatever the instance */
    Py_ssize_t room = 0;
    for (Py_ssize_t i = 0; i < n; i++) room += line_room(&lines[i], &a);
    order = PyMem_RawMalloc((size_t)n * 2 * sizeof(Order));
    scratch = PyMem_RawMalloc((size_t)room);
    if (!order || !scratch) {
        PyErr_NoMemory();
        goto done;
    }
    PyThreadState *state = n > RELEASE_GIL_ROWS ? PyEval_SaveThread() : NULL;
    Order *sorted = build_lines(lines, order, order + n, n, &a, scratch);
    if (state) PyEval_RestoreThread(state);
    if (!sorted) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL failed to hash an event key with md5");
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += lines[i].len;
    result = PyBytes_FromStringAndSize(NULL, total);
    if (!result) goto done;
    state = n > RELEASE_GIL_ROWS ? PyEval_SaveThread() : NULL;
    copy_lines(PyBytes_AS_STRING(result), lines, sorted, n, scratch);
    if (state) PyEval_RestoreThread(state);
done:
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(lines[i].row);
    PyMem_Free(lines);
    PyMem_RawFree(order);
    PyMem_RawFree(scratch);
    PyMem_Free((void *)a.raw);
    PyMem_Free(a.escaped);
    PyMem_Free(a.tail);
    Py_XDECREF(held);
    Py_DECREF(it);
    return result;
}

/* ---- rollup_text -------------------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buffer;

static char *reserve(Buffer *b, Py_ssize_t more) {
    if (b->len + more > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more) cap *= 2;
        char *data = PyMem_Realloc(b->data, (size_t)cap);
        if (!data) {
            PyErr_NoMemory();
            return NULL;
        }
        b->data = data;
        b->cap = cap;
    }
    return b->data + b->len;
}

/* Append format(value, '') and then ``sep``. Return 0 or -1. */
static int add_value(Buffer *b, PyObject *value, char sep) {
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (!overflow) {
            char *out = reserve(b, 22);
            if (!out) return -1;
            int len = format_int(out, v);
            out[len] = sep;
            b->len += len + 1;
            return 0;
        }
    }
    PyObject *held = PyList_New(0);
    if (!held) return -1;
    Field f;
    int failed = read_field(value, &f, held);
    char *out = failed ? NULL : reserve(b, f.len + 1);
    if (out) {
        memcpy(out, f.text, (size_t)f.len);
        out[f.len] = sep;
        b->len += f.len + 1;
    }
    Py_DECREF(held);
    return out ? 0 : -1;
}

/* Whether the hour entry ``e`` is written: ``e[1] or any(e)``. Return 1, 0 or -1. */
static int worth_a_line(PyObject **e, Py_ssize_t n) {
    if (n < 2) {
        PyErr_SetString(PyExc_IndexError, "an hour entry has 7 counts");
        return -1;
    }
    int truth = PyObject_IsTrue(e[1]);
    for (Py_ssize_t i = 0; truth == 0 && i < n; i++) truth = PyObject_IsTrue(e[i]);
    return truth;
}

/* Append the line of one item of ``hours``: ``((hour, series), entry)``. Return 0 or -1. */
static int add_hour(Buffer *b, PyObject *key, PyObject *entry) {
    PyObject *pair = PyTuple_Check(key) ? (Py_INCREF(key), key) : PySequence_Tuple(key), *items = NULL;
    int status = -1;
    if (!pair) return -1;
    if (PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_ValueError, "an hour key is (hour, series)");
        goto done;
    }
    items = PySequence_Fast(entry, "an hour entry is a sequence of 7 counts");
    if (!items) goto done;
    PyObject **e = PySequence_Fast_ITEMS(items);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    int worth = worth_a_line(e, n);
    if (worth <= 0) {
        status = worth;
        goto done;
    }
    if (n < 7) {
        PyErr_SetString(PyExc_IndexError, "an hour entry has 7 counts");
        goto done;
    }
    if (add_value(b, PyTuple_GET_ITEM(pair, 0), '\t') || add_value(b, PyTuple_GET_ITEM(pair, 1), '\t')) goto done;
    for (int i = 0; i < 7; i++)
        if (add_value(b, e[i], i == 6 ? '\n' : '\t')) goto done;
    status = 0;
done:
    Py_XDECREF(items);
    Py_DECREF(pair);
    return status;
}

static PyObject *rollup_text(PyObject *Py_UNUSED(self), PyObject *hours) {
    Buffer b = {NULL, 0, 0};
    PyObject *result = NULL;
    if (PyDict_Check(hours)) {
        Py_ssize_t pos = 0;
        PyObject *key, *entry;
        while (PyDict_Next(hours, &pos, &key, &entry)) {
            Py_INCREF(key);
            Py_INCREF(entry);
            int failed = add_hour(&b, key, entry);
            Py_DECREF(key);
            Py_DECREF(entry);
            if (failed) goto done;
        }
    } else {
        PyObject *items = PyObject_CallMethod(hours, "items", NULL);
        PyObject *it = items ? PyObject_GetIter(items) : NULL, *item;
        Py_XDECREF(items);
        if (!it) goto done;
        while ((item = PyIter_Next(it))) {
            PyObject *pair = PySequence_Tuple(item);
            Py_DECREF(item);
            int failed = !pair || PyTuple_GET_SIZE(pair) != 2;
            if (pair && failed) PyErr_SetString(PyExc_ValueError, "an item of hours is (key, entry)");
            if (!failed) failed = add_hour(&b, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
            Py_XDECREF(pair);
            if (failed) {
                Py_DECREF(it);
                goto done;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) goto done;
    }
    result = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
done:
    PyMem_Free(b.data);
    return result;
}

/* ---- module ------------------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"copy_text", copy_text, METH_VARARGS,
     "copy_text(rows, instance) -> bytes\n\n"
     "The COPY text of rows as lines of events' columns in key-hash order: copytext.py_copy_text, in C."},
    {"rollup_text", rollup_text, METH_O,
     "rollup_text(hours) -> bytes\n\n"
     "The COPY text of the hour deltas, all-zero ones left out: copytext.py_rollup_text, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_copytext", "The C builder of guardd.store.postgres.copytext's COPY text.", -1, methods,
};

PyMODINIT_FUNC PyInit__copytext(void) {
    if (!md5_md) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        md5_md = EVP_MD_fetch(NULL, "MD5", "-fips"); /* as hashlib.md5(usedforsecurity=False) */
#else
        md5_md = EVP_md5();
#endif
        if (!md5_md) {
            PyErr_SetString(PyExc_ImportError, "OpenSSL offers no md5 here: the COPY text is built in Python");
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
