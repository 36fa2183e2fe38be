/* Fast path of td3drive.analysis.events: TFRecord framing, masked CRC32C checks and the parse of
 * the common scalar Event layout (wall_time, step, one Summary.Value with tag + simple_value),
 * in one pass over the file bytes. Everything else (file_version, session logs, tensor scalars,
 * multi-value summaries) is handed back to Python, which parses it with the protobuf classes.
 *
 * scan(buf: bytes) -> (tags: list[str], fast: bytes, slow: list[(record_index, payload)],
 *                      damage: list[(kind, offset, resume_offset_or_-1)], n_records: int)
 * fast is a packed array of struct FastRow (see below), one per fast-path record.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t record;
    int64_t step;
    double wall_time;
    double value;
    int32_t tag;
    int32_t pad;
} FastRow;

static uint32_t crc_table[8][256];

static void init_crc(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
            crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
    return c ^ 0xFFFFFFFFu;
}

static uint32_t masked(const uint8_t *p, size_t n) {
    uint32_t c = crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Valid complete record at pos? */
static int record_ok(const uint8_t *b, size_t n, size_t pos) {
    if (pos + 12 > n) return 0;
    uint64_t len = rd64(b + pos);
    if (len > n || pos + 16 + len > n) return 0;
    if (rd32(b + pos + 8) != masked(b + pos, 8)) return 0;
    return rd32(b + pos + 12 + len) == masked(b + pos + 12, (size_t)len);
}

static int varint(const uint8_t *p, const uint8_t *end, uint64_t *out, const uint8_t **next) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t byte = *p++;
        v |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) { *out = v; *next = p; return 1; }
    }
    return 0;
}

/* Parse the stereotyped scalar Event; returns 1 and fills row/tag on success. */
static int parse_fast(const uint8_t *p, size_t n, FastRow *row, const uint8_t **tag, size_t *tag_len) {
    const uint8_t *end = p + n, *q = p;
    uint64_t v, len;
    double wall = 0.0;
    int64_t step = 0;
    if (q < end && *q == 0x09) {
        if (q + 9 > end) return 0;
        memcpy(&wall, q + 1, 8);
        q += 9;
    }
    if (q < end && *q == 0x10) {
        if (!varint(q + 1, end, &v, &q)) return 0;
        step = (int64_t)v;
    }
    if (q >= end || *q != 0x2A) return 0; /* summary */
    if (!varint(q + 1, end, &len, &q) || q + len != end) return 0;
    if (q >= end || *q != 0x0A) return 0; /* one Summary.Value */
    if (!varint(q + 1, end, &len, &q) || q + len != end) return 0;
    if (q >= end || *q != 0x0A) return 0; /* tag */
    if (!varint(q + 1, end, &len, &q) || q + len > end) return 0;
    *tag = q;
    *tag_len = (size_t)len;
    q += len;
    if (q + 5 != end || *q != 0x15) return 0; /* simple_value, and nothing else */
    float f;
    memcpy(&f, q + 1, 4);
    row->step = step;
    row->wall_time = wall;
    row->value = (double)f;
    return 1;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    const uint8_t *b = (const uint8_t *)view.buf;
    size_t n = (size_t)view.len, pos = 0;
    PyObject *tags = PyList_New(0), *slow = PyList_New(0), *damage = PyList_New(0);
    PyObject *tag_index = PyDict_New();
    size_t cap = 1024, nfast = 0;
    FastRow *rows = (FastRow *)malloc(cap * sizeof(FastRow));
    int64_t record = 0;
    const uint8_t *last_tag = NULL;
    size_t last_len = 0;
    int32_t last_id = -1;
    if (!tags || !slow || !damage || !tag_index || !rows) goto fail;

    while (pos < n) {
        const char *bad = NULL;
        if (pos + 12 > n) {
            PyObject *t = Py_BuildValue("(snn)", "truncated", (Py_ssize_t)pos, (Py_ssize_t)-1);
            if (!t || PyList_Append(damage, t) < 0) { Py_XDECREF(t); goto fail; }
            Py_DECREF(t);
            break;
        }
        uint64_t len = rd64(b + pos);
        if (rd32(b + pos + 8) != masked(b + pos, 8)) bad = "header";
        else if (len > n || pos + 16 + len > n) {
            PyObject *t = Py_BuildValue("(snn)", "truncated", (Py_ssize_t)pos, (Py_ssize_t)-1);
            if (!t || PyList_Append(damage, t) < 0) { Py_XDECREF(t); goto fail; }
            Py_DECREF(t);
            break;
        } else if (rd32(b + pos + 12 + len) != masked(b + pos + 12, (size_t)len)) bad = "payload";
        if (bad) {
            size_t next = pos + 1;
            while (next + 12 <= n && !record_ok(b, n, next)) next++;
            Py_ssize_t resume = next + 12 <= n ? (Py_ssize_t)next : -1;
            PyObject *t = Py_BuildValue("(snn)", bad, (Py_ssize_t)pos, resume);
            if (!t || PyList_Append(damage, t) < 0) { Py_XDECREF(t); goto fail; }
            Py_DECREF(t);
            if (resume < 0) break;
            pos = next;
            continue;
        }
        const uint8_t *payload = b + pos + 12;
        FastRow row;
        const uint8_t *tag;
        size_t tag_len;
        if (parse_fast(payload, (size_t)len, &row, &tag, &tag_len)) {
            int32_t id;
            if (last_tag && tag_len == last_len && memcmp(tag, last_tag, tag_len) == 0) id = last_id;
            else {
                PyObject *key = PyBytes_FromStringAndSize((const char *)tag, (Py_ssize_t)tag_len);
                if (!key) goto fail;
                PyObject *found = PyDict_GetItem(tag_index, key);
                if (found) id = (int32_t)PyLong_AsLong(found);
                else {
                    id = (int32_t)PyList_GET_SIZE(tags);
                    PyObject *idobj = PyLong_FromLong(id);
                    PyObject *s = PyUnicode_DecodeUTF8((const char *)tag, (Py_ssize_t)tag_len, "replace");
                    if (!idobj || !s || PyDict_SetItem(tag_index, key, idobj) < 0 || PyList_Append(tags, s) < 0) {
                        Py_XDECREF(idobj); Py_XDECREF(s); Py_DECREF(key); goto fail;
                    }
                    Py_DECREF(idobj);
                    Py_DECREF(s);
                }
                Py_DECREF(key);
                last_tag = tag; last_len = tag_len; last_id = id;
            }
            if (nfast == cap) {
                cap *= 2;
                FastRow *grown = (FastRow *)realloc(rows, cap * sizeof(FastRow));
                if (!grown) goto fail;
                rows = grown;
            }
            row.record = record;
            row.tag = id;
            row.pad = 0;
            rows[nfast++] = row;
        } else {
            PyObject *t = Py_BuildValue("(Ly#)", (long long)record, (const char *)payload, (Py_ssize_t)len);
            if (!t || PyList_Append(slow, t) < 0) { Py_XDECREF(t); goto fail; }
            Py_DECREF(t);
        }
        record++;
        pos += 16 + len;
    }
    PyObject *fast = PyBytes_FromStringAndSize((const char *)rows, (Py_ssize_t)(nfast * sizeof(FastRow)));
    free(rows);
    PyBuffer_Release(&view);
    Py_DECREF(tag_index);
    if (!fast) { Py_DECREF(tags); Py_DECREF(slow); Py_DECREF(damage); return NULL; }
    return Py_BuildValue("(NNNNL)", tags, fast, slow, damage, (long long)record);

fail:
    free(rows);
    PyBuffer_Release(&view);
    Py_XDECREF(tags); Py_XDECREF(slow); Py_XDECREF(damage); Py_XDECREF(tag_index);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Frame, CRC-check and fast-parse a TFRecord event file buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastevents", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastevents(void) {
    init_crc();
    return PyModule_Create(&module);
}
