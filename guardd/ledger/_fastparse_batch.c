/* Taking a scanned line into the batch, for guardd.ledger._fastparse (see _fastparse.h): fp_accept() decides
 * whether the Scanner takes a line fp_scan_line() understood (its cost under the ceiling, its texts UTF-8, its
 * series acceptable to the Python code), and fp_commit() adds it to the Parsed batch exactly as the Python batch
 * path would: the row, the unpriced tokens, the hour sums, the health row, through the Scanner's callbacks for the
 * key of an id-less line, a new series and a health row.
 */
#include "_fastparse.h"

#define HOUR_MS 3600000LL

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

/* Add an accepted line (its stripped text [p, e), at file offset `offset`) to the batch. 0, or -1 on an error. */
int fp_commit(Scanner *self, Out *o, const Line *L, PyObject *sid, PyObject *error, const char *p, const char *e,
              long long offset) {
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
int fp_accept(Scanner *self, const char *p, const char *e, Line *L, PyObject **sid, PyObject **error) {
    *sid = *error = NULL;
    if (!fp_scan_line(p, e, L)) return 0;
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
