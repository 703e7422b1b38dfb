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
 * The sources (compiled into this one extension by setup.py; what they share is in _fastparse.h):
 *   _fastparse.c          this file: the module, the Scanner type and Scanner.scan's loop over a block's lines
 *   _fastparse_scan.c     the JSON scanning of one line, and the accepted shape of a line
 *   _fastparse_convert.c  the exact conversions: times to Unix ms, costs to pico-dollars, latencies
 *   _fastparse_batch.c    whether a scanned line is taken, and adding it to the batch (rows, tokens, hours, health)
 */
#include "_fastparse.h"

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
        int ok = fp_accept(self, p, e, &L, &sid, &error);
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
            int bad = fp_commit(self, &o, &L, sid, error, s, t, base + (p - data));
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
