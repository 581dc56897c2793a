/* One ROAD/ROAD++ video entry (the JSON text of db[video]) scanned straight into flat arrays.
 *
 * The scanner reads only the plain form of an entry: the known fields with their usual types,
 * ASCII strings without escapes, integers of at most 18 digits, finite numbers, and no key given
 * twice in any object. Anything else makes it return None, and the caller reads the entry the
 * msgspec way (which gives the same arrays, or the usual error or warning). So it never has to
 * report a problem itself, and what it returns is what the other readers give.
 *
 * scan_entry(text, max_frames) -> None | (numf, width, height, split_ids, annotated_frames,
 *                                         frames, boxes, uid_index, uids, labels, tubes)
 *   numf              at most max_frames (a larger one is not the plain form)
 *   split_ids         list[str] ([] when absent)
 *   annotated_frames  bytes: int64 numbers of the frames with annotated > 0
 *   frames            bytes: (N,) int32 frame number of each box, boxes in text order
 *   boxes             bytes: (N, 4) float64
 *   uid_index         bytes: (N,) int32 index into uids (first-seen order)
 *   uids              list[str]
 *   labels            5 x (rows, ids): bytes of (M,) int64 box index and (M,) int64 label id
 *   tubes             5 x (label_ids, sizes, rows): bytes of (T,) int64, (T,) int64, (R,) int64
 *                     box index of each reference, -1 where no such box
 * in the order agent, action, loc, duplex, triplet.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <locale.h>
static _locale_t c_locale;
#define strtod_c(text, stop) _strtod_l(text, stop, c_locale)
#define make_c_locale() (c_locale = _create_locale(LC_NUMERIC, "C"))
#else
#include <locale.h>
#ifdef __APPLE__
#include <xlocale.h>
#endif
static locale_t c_locale;
#define strtod_c(text, stop) strtod_l(text, stop, c_locale)
#define make_c_locale() (c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0))
#endif

#define TYPES 5
#define MAX_DEPTH 256

static const char *TYPE_NAMES[TYPES] = {"agent", "action", "loc", "duplex", "triplet"};

/* ---- growable byte buffers ---- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

typedef struct {
    const char *at;
    Py_ssize_t len;
} Span;

/* ---- hash table of (scope, key bytes) -> value ----
 * scope 0: tube_uids (value: their ordinal); -n: the box keys of frame n (value: the box's
 * index); a positive scope: the keys of one object, to find a key given twice in it. */

typedef struct {
    const char *key; /* NULL: empty slot */
    uint64_t hash;
    int64_t scope, value;
    Py_ssize_t len;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask, used;
} Table;

typedef struct {
    const char *p, *end;
    int bad, oom, depth;
    int64_t scopes;
    Table table;
    int64_t max_frames;             /* the largest numf read (more: not the plain form) */
    uint32_t *stamps;               /* per frame number: the object that last gave it as key */
    int64_t stamps_size;
    uint32_t objects;               /* objects keyed by frame number so far */
    /* the entry */
    int64_t numf, width, height, max_frame;
    Buf split_spans;                /* Span */
    Buf annotated;                  /* int64 */
    Buf frames, boxes, uid_index;   /* int32, double x4, int32 */
    Buf uid_spans;                  /* Span */
    Buf label_rows[TYPES], label_ids[TYPES];           /* int64 */
    Buf tube_labels[TYPES], tube_sizes[TYPES];         /* int64 */
    Buf tube_refs[TYPES];           /* Span frame key, Span box key */
    int64_t boxes_count;
} Scan;

static int fail(Scan *s) {
    s->bad = 1;
    return -1;
}

static int put(Scan *s, Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            s->oom = 1;
            return fail(s);
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int put_i64(Scan *s, Buf *b, int64_t v) { return put(s, b, &v, sizeof v); }

static uint64_t hash_of(int64_t scope, const char *key, Py_ssize_t len) {
    uint64_t h = 1469598103934665603ULL ^ ((uint64_t)scope * 0x9E3779B97F4A7C15ULL);
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    return h ^ (h >> 29);
}

static int grow(Scan *s) {
    Table *t = &s->table;
    size_t size = t->slots ? (t->mask + 1) * 2 : 1024;
    Slot *slots = calloc(size, sizeof(Slot));
    if (!slots) {
        s->oom = 1;
        return fail(s);
    }
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].key) continue;
        size_t j = t->slots[i].hash & (size - 1);
        while (slots[j].key) j = (j + 1) & (size - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* The slot of (scope, key): found, or a new one holding value. */
static Slot *find_or_add(Scan *s, int64_t scope, const char *key, Py_ssize_t len,
                         int64_t value, int *added) {
    Table *t = &s->table;
    if (!t->slots || (t->used + 1) * 2 > t->mask + 1) {
        if (grow(s)) return NULL;
    }
    uint64_t h = hash_of(scope, key, len);
    size_t j = h & t->mask;
    for (; t->slots[j].key; j = (j + 1) & t->mask) {
        Slot *slot = &t->slots[j];
        if (slot->hash == h && slot->scope == scope && slot->len == len &&
            memcmp(slot->key, key, len) == 0) {
            *added = 0;
            return slot;
        }
    }
    Slot *slot = &t->slots[j];
    slot->key = key;
    slot->hash = h;
    slot->scope = scope;
    slot->len = len;
    slot->value = value;
    t->used++;
    *added = 1;
    return slot;
}

static const Slot *find(Scan *s, int64_t scope, const char *key, Py_ssize_t len) {
    Table *t = &s->table;
    if (!t->slots) return NULL;
    uint64_t h = hash_of(scope, key, len);
    for (size_t j = h & t->mask; t->slots[j].key; j = (j + 1) & t->mask) {
        const Slot *slot = &t->slots[j];
        if (slot->hash == h && slot->scope == scope && slot->len == len &&
            memcmp(slot->key, key, len) == 0)
            return slot;
    }
    return NULL;
}

/* A key of an object with this scope; fails when the object gave it before. */
static int new_key(Scan *s, int64_t scope, Span key, int64_t value) {
    int added;
    if (!find_or_add(s, scope, key.at, key.len, value, &added)) return -1;
    return added ? 0 : fail(s);
}

/* A frame number (1..max_frames) as a key of the object numbered ``object``; fails when that
 * object gave it before. Cheaper than the hash table for the keys that are frame numbers. */
static int new_frame_key(Scan *s, int64_t n, uint32_t object) {
    if (n >= s->stamps_size) {
        int64_t size = s->stamps_size ? s->stamps_size : 1024;
        while (size <= n) size *= 2;
        if (size > s->max_frames + 1) size = s->max_frames + 1;
        uint32_t *grown = realloc(s->stamps, size * sizeof *grown);
        if (!grown) {
            s->oom = 1;
            return fail(s);
        }
        memset(grown + s->stamps_size, 0, (size - s->stamps_size) * sizeof *grown);
        s->stamps = grown;
        s->stamps_size = size;
    }
    if (s->stamps[n] == object) return fail(s);
    s->stamps[n] = object;
    return 0;
}

/* ---- JSON tokens ---- */

static void skip_space(Scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* Skip white space and the character c. */
static int expect(Scan *s, char c) {
    skip_space(s);
    if (s->p >= s->end || *s->p != c) return fail(s);
    s->p++;
    return 0;
}

/* After a member: 1 at ',', 0 at the closing character, -1 otherwise. */
static int next_member(Scan *s, char close) {
    skip_space(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        return 1;
    }
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    return fail(s);
}

/* Open a container: 1 when it has members, 0 when empty (and closed), -1 otherwise. */
static int open_container(Scan *s, char open, char close) {
    if (expect(s, open)) return -1;
    skip_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    return 1;
}

/* A string of printable ASCII without escapes. */
static int string(Scan *s, Span *out) {
    if (expect(s, '"')) return -1;
    const char *start = s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            out->at = start;
            out->len = s->p - start;
            s->p++;
            return 0;
        }
        if (c == '\\' || c < 0x20 || c >= 0x80) return fail(s);
        s->p++;
    }
    return fail(s);
}

static int key(Scan *s, Span *out) {
    if (string(s, out)) return -1;
    return expect(s, ':');
}

/* Powers of ten that doubles hold exactly. */
static const double EXACT_POWERS[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The text [start, end) of a number as the nearest double: at once where its digits and its
 * power of ten are both exact doubles (one correctly rounded product or quotient, Clinger's
 * fast path), else by the C library's correctly rounded strtod in the "C" locale (whatever
 * locale the program set). */
static int to_double(Scan *s, const char *start, const char *end, uint64_t mantissa,
                     int significant, int64_t exponent, double *out) {
    if (significant <= 15 && exponent >= -22 && exponent <= 22) {
        double v = (double)mantissa;
        v = exponent < 0 ? v / EXACT_POWERS[-exponent] : v * EXACT_POWERS[exponent];
        *out = *start == '-' ? -v : v;
        return 0;
    }
    char text[72];
    Py_ssize_t len = end - start;
    if (len >= (Py_ssize_t)sizeof text) return fail(s);
    memcpy(text, start, len);
    text[len] = 0;
    char *stop;
    double v = strtod_c(text, &stop);
    if (stop != text + len || !isfinite(v)) return fail(s);
    *out = v;
    return 0;
}

/* A JSON number: its value, and whether it is an integer literal (then in *integer; one of
 * more than 18 digits fails). Infinite values fail. */
static int number(Scan *s, double *value, int64_t *integer, int *is_integer) {
    skip_space(s);
    const char *start = s->p;
    int negative = s->p < s->end && *s->p == '-';
    if (negative) s->p++;
    uint64_t mantissa = 0;
    int significant = 0, whole = 0;
    int64_t exponent = 0;
    for (; s->p < s->end && *s->p >= '0' && *s->p <= '9'; s->p++, whole++) {
        if (significant || *s->p != '0') significant++;
        if (significant <= 19) mantissa = mantissa * 10 + (uint64_t)(*s->p - '0');
        else exponent++;
    }
    if (whole == 0 || (whole > 1 && start[negative] == '0')) return fail(s);
    *is_integer = 1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        const char *fraction = s->p;
        for (; s->p < s->end && *s->p >= '0' && *s->p <= '9'; s->p++) {
            if (significant || *s->p != '0') significant++;
            if (significant <= 19) {
                mantissa = mantissa * 10 + (uint64_t)(*s->p - '0');
                exponent--;
            }
        }
        if (s->p == fraction) return fail(s);
        *is_integer = 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        int sign = 1;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) sign = *s->p++ == '-' ? -1 : 1;
        int64_t power = 0;
        const char *first = s->p;
        for (; s->p < s->end && *s->p >= '0' && *s->p <= '9'; s->p++)
            if (power < 100000) power = power * 10 + (*s->p - '0');
        if (s->p == first) return fail(s);
        exponent += sign * power;
        *is_integer = 0;
    }
    if (*is_integer) {
        if (whole > 18) return fail(s);
        *integer = negative ? -(int64_t)mantissa : (int64_t)mantissa;
        *value = (double)*integer; /* rounded to nearest, as a parser rounds the text */
        return 0;
    }
    return to_double(s, start, s->p, mantissa, significant, exponent, value);
}

static int integer(Scan *s, int64_t *out) {
    double value;
    int is_integer;
    if (number(s, &value, out, &is_integer)) return -1;
    return is_integer ? 0 : fail(s);
}

/* A list of integers; with rows, each id is written to ids and the box index to rows. */
static int integers(Scan *s, Buf *rows, Buf *ids, int64_t box) {
    int more = open_container(s, '[', ']');
    while (more > 0) {
        int64_t id;
        if (integer(s, &id)) return -1;
        if (rows && (put_i64(s, rows, box) || put_i64(s, ids, id))) return -1;
        more = next_member(s, ']');
    }
    return more;
}

static int literal(Scan *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return fail(s);
    s->p += n;
    return 0;
}

/* Any JSON value, checked (no key twice in an object) and skipped. */
static int skip_value(Scan *s) {
    skip_space(s);
    if (s->p >= s->end) return fail(s);
    if (++s->depth > MAX_DEPTH) return fail(s);
    int more, status = 0;
    Span k;
    switch (*s->p) {
    case '{': {
        int64_t scope = ++s->scopes;
        more = open_container(s, '{', '}');
        while (more > 0) {
            if (key(s, &k) || new_key(s, scope, k, 0) || skip_value(s)) return -1;
            more = next_member(s, '}');
        }
        status = more;
        break;
    }
    case '[':
        more = open_container(s, '[', ']');
        while (more > 0) {
            if (skip_value(s)) return -1;
            more = next_member(s, ']');
        }
        status = more;
        break;
    case '"':
        status = string(s, &k);
        break;
    case 't':
        status = literal(s, "true");
        break;
    case 'f':
        status = literal(s, "false");
        break;
    case 'n':
        status = literal(s, "null");
        break;
    default: {
        double value;
        int64_t whole;
        int is_integer;
        status = number(s, &value, &whole, &is_integer);
    }
    }
    s->depth--;
    return status;
}

static int is(Span k, const char *name) {
    return (size_t)k.len == strlen(name) && memcmp(k.at, name, k.len) == 0;
}

/* The number a frame key spells exactly (1-9 digits, no leading zero, not 0), else -1. */
static int64_t frame_number(Span k) {
    if (k.len < 1 || k.len > 9 || k.at[0] == '0') return -1;
    int64_t n = 0;
    for (Py_ssize_t i = 0; i < k.len; i++) {
        if (k.at[i] < '0' || k.at[i] > '9') return -1;
        n = n * 10 + (k.at[i] - '0');
    }
    return n;
}

/* Each field may be given once: mark it in *seen, fail when it was already. */
static int once(Scan *s, int *seen, int bit) {
    if (*seen & bit) return fail(s);
    *seen |= bit;
    return 0;
}

/* ---- the entry ---- */

/* 2**63: the bound of the msgspec reader's Float64 and Int64 */
static const double NUMBER_LIMIT = 9223372036854775808.0;

static int box(Scan *s, int64_t frame) {
    int seen = 0, more = open_container(s, '{', '}');
    int64_t row = s->boxes_count;
    double coords[4];
    int32_t uid = 0;
    while (more > 0) {
        Span k;
        if (key(s, &k)) return -1;
        if (is(k, "box")) {
            if (once(s, &seen, 1) || expect(s, '[')) return -1;
            for (int i = 0; i < 4; i++) {
                int64_t whole;
                int is_integer;
                if ((i && expect(s, ',')) || number(s, &coords[i], &whole, &is_integer))
                    return -1;
                if (!(coords[i] > -NUMBER_LIMIT && coords[i] < NUMBER_LIMIT)) return fail(s);
            }
            if (expect(s, ']')) return -1;
        } else if (is(k, "tube_uid")) {
            Span text;
            int added;
            if (once(s, &seen, 2) || string(s, &text)) return -1;
            int64_t ordinal = (int64_t)(s->uid_spans.len / sizeof(Span));
            Slot *slot = find_or_add(s, 0, text.at, text.len, ordinal, &added);
            if (!slot || (added && put(s, &s->uid_spans, &text, sizeof text))) return -1;
            uid = (int32_t)slot->value;
        } else {
            int t = 0;
            while (t < TYPES && !(k.len == (Py_ssize_t)strlen(TYPE_NAMES[t]) + 4 &&
                                  memcmp(k.at, TYPE_NAMES[t], k.len - 4) == 0 &&
                                  memcmp(k.at + k.len - 4, "_ids", 4) == 0))
                t++;
            if (t == TYPES || once(s, &seen, 4 << t) ||
                integers(s, &s->label_rows[t], &s->label_ids[t], row))
                return -1;
        }
        more = next_member(s, '}');
    }
    if (more < 0 || seen != (1 << (TYPES + 2)) - 1) return fail(s);
    int32_t frame32 = (int32_t)frame;
    s->boxes_count++;
    return put(s, &s->boxes, coords, sizeof coords) || put(s, &s->frames, &frame32, 4) ||
           put(s, &s->uid_index, &uid, 4);
}

static int frame(Scan *s, int64_t n) {
    int seen = 0, more = open_container(s, '{', '}');
    int64_t width = 0, height = 0, id;
    while (more > 0) {
        Span k;
        if (key(s, &k)) return -1;
        if (is(k, "annotated")) {
            double value;
            int64_t whole;
            int is_integer;
            if (once(s, &seen, 1) || number(s, &value, &whole, &is_integer)) return -1;
            if (!(value > -NUMBER_LIMIT && value < NUMBER_LIMIT)) return fail(s);
            if ((is_integer ? whole > 0 : value > 0) && put_i64(s, &s->annotated, n)) return -1;
        } else if (is(k, "width")) {
            if (once(s, &seen, 2) || integer(s, &width)) return -1;
        } else if (is(k, "height")) {
            if (once(s, &seen, 4) || integer(s, &height)) return -1;
        } else if (is(k, "annos")) {
            if (once(s, &seen, 8)) return -1;
            skip_space(s);
            if (s->p < s->end && *s->p == 'n') {
                if (literal(s, "null")) return -1;
            } else {
                int boxes = open_container(s, '{', '}');
                while (boxes > 0) {
                    Span box_key;
                    if (key(s, &box_key) || new_key(s, -n, box_key, s->boxes_count) ||
                        box(s, n))
                        return -1;
                    boxes = next_member(s, '}');
                }
                if (boxes < 0) return -1;
            }
        } else if (is(k, "rgb_image_id")) {
            if (once(s, &seen, 16) || integer(s, &id)) return -1;
        } else if (is(k, "input_image_id")) {
            if (once(s, &seen, 32) || integer(s, &id)) return -1;
        } else if (is(k, "av_action_ids")) {
            if (once(s, &seen, 64) || integers(s, NULL, NULL, 0)) return -1;
        } else {
            return fail(s);
        }
        more = next_member(s, '}');
    }
    if (more < 0) return -1;
    if (!s->width) { /* the size is the first frame's that gives a width */
        s->width = width;
        s->height = height;
        if (width < 0 || height < 0) return fail(s);
    }
    return 0;
}

static int frames(Scan *s) {
    uint32_t object = ++s->objects;
    int more = open_container(s, '{', '}');
    while (more > 0) {
        Span k;
        if (key(s, &k)) return -1;
        int64_t n = frame_number(k);
        if (n < 1 || n > s->max_frames || new_frame_key(s, n, object)) return fail(s);
        if (n > s->max_frame) s->max_frame = n;
        if (frame(s, n)) return -1;
        more = next_member(s, '}');
    }
    return more;
}

static int tubes(Scan *s, int t) {
    int64_t scope = ++s->scopes;
    int more = open_container(s, '{', '}');
    while (more > 0) {
        Span k;
        if (key(s, &k) || new_key(s, scope, k, 0)) return -1;
        int seen = 0, fields = open_container(s, '{', '}');
        int64_t label = 0, size = 0;
        while (fields > 0) {
            if (key(s, &k)) return -1;
            if (is(k, "label_id")) {
                if (once(s, &seen, 1) || integer(s, &label)) return -1;
            } else if (is(k, "annos")) {
                int64_t refs = ++s->scopes;
                uint32_t object = ++s->objects;
                if (once(s, &seen, 2)) return -1;
                int more_refs = open_container(s, '{', '}');
                while (more_refs > 0) {
                    Span ref[2];
                    if (key(s, &ref[0])) return -1;
                    int64_t n = frame_number(ref[0]);
                    if ((n >= 1 && n <= s->max_frames ? new_frame_key(s, n, object)
                                                      : new_key(s, refs, ref[0], 0)) ||
                        string(s, &ref[1]) || put(s, &s->tube_refs[t], ref, sizeof ref))
                        return -1;
                    size++;
                    more_refs = next_member(s, '}');
                }
                if (more_refs < 0) return -1;
            } else {
                return fail(s);
            }
            fields = next_member(s, '}');
        }
        if (fields < 0 || seen != 3) return fail(s);
        if (put_i64(s, &s->tube_labels[t], label) || put_i64(s, &s->tube_sizes[t], size))
            return -1;
        more = next_member(s, '}');
    }
    return more;
}

static int split_ids(Scan *s) {
    int more = open_container(s, '[', ']');
    while (more > 0) {
        Span name;
        if (string(s, &name) || put(s, &s->split_spans, &name, sizeof name)) return -1;
        more = next_member(s, ']');
    }
    return more;
}

static const char *UNTYPED[] = {"av_action_tubes", "frame_labels", "location", "weather"};

static int entry(Scan *s) {
    int seen = 0, more = open_container(s, '{', '}');
    while (more > 0) {
        Span k;
        if (key(s, &k)) return -1;
        int status = -1;
        if (is(k, "numf")) {
            status = once(s, &seen, 1) || integer(s, &s->numf);
        } else if (is(k, "frames")) {
            status = once(s, &seen, 2) || frames(s);
        } else if (is(k, "split_ids")) {
            status = once(s, &seen, 4) || split_ids(s);
        } else {
            for (int t = 0; t < TYPES && status == -1 && !s->bad; t++) {
                if (k.len == (Py_ssize_t)strlen(TYPE_NAMES[t]) + 6 &&
                    memcmp(k.at, TYPE_NAMES[t], k.len - 6) == 0 &&
                    memcmp(k.at + k.len - 6, "_tubes", 6) == 0)
                    status = once(s, &seen, 8 << t) || tubes(s, t);
            }
            for (int u = 0; u < 4 && status == -1 && !s->bad; u++) {
                if (is(k, UNTYPED[u])) status = once(s, &seen, 256 << u) || skip_value(s);
            }
        }
        if (status) return fail(s);
        more = next_member(s, '}');
    }
    skip_space(s);
    if (more < 0 || s->p != s->end || (seen & 3) != 3) return fail(s);
    if (s->numf < 0 || s->numf > s->max_frames || s->max_frame > s->numf) return fail(s);
    return 0;
}

/* ---- results ---- */

static PyObject *as_bytes(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

static PyObject *as_strings(Buf *b) {
    Py_ssize_t count = (Py_ssize_t)(b->len / sizeof(Span));
    PyObject *list = PyList_New(count);
    if (!list) return NULL;
    const Span *spans = (const Span *)b->data;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *text = PyUnicode_DecodeASCII(spans[i].at, spans[i].len, NULL);
        if (!text) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, text);
    }
    return list;
}

/* Box index of each tube reference (frame key, box key), -1 where there is none. */
static int resolve(Scan *s, int t, Buf *rows) {
    const Span *refs = (const Span *)s->tube_refs[t].data;
    size_t count = s->tube_refs[t].len / (2 * sizeof(Span));
    for (size_t i = 0; i < count; i++) {
        int64_t n = frame_number(refs[2 * i]);
        const Slot *slot = n > 0 ? find(s, -n, refs[2 * i + 1].at, refs[2 * i + 1].len) : NULL;
        if (put_i64(s, rows, slot ? slot->value : -1)) return -1;
    }
    return 0;
}

static PyObject *results(Scan *s) {
    PyObject *labels = PyTuple_New(TYPES), *tube_runs = PyTuple_New(TYPES);
    if (!labels || !tube_runs) goto error;
    for (int t = 0; t < TYPES; t++) {
        PyObject *pair = Py_BuildValue("(NN)", as_bytes(&s->label_rows[t]),
                                       as_bytes(&s->label_ids[t]));
        if (!pair) goto error;
        PyTuple_SET_ITEM(labels, t, pair);
        Buf rows = {0};
        if (resolve(s, t, &rows)) {
            free(rows.data);
            if (s->oom) PyErr_NoMemory();
            goto error;
        }
        PyObject *runs = Py_BuildValue("(NNN)", as_bytes(&s->tube_labels[t]),
                                       as_bytes(&s->tube_sizes[t]), as_bytes(&rows));
        free(rows.data);
        if (!runs) goto error;
        PyTuple_SET_ITEM(tube_runs, t, runs);
    }
    return Py_BuildValue("(LLLNNNNNNNN)", (long long)s->numf, (long long)s->width,
                         (long long)s->height, as_strings(&s->split_spans),
                         as_bytes(&s->annotated), as_bytes(&s->frames), as_bytes(&s->boxes),
                         as_bytes(&s->uid_index), as_strings(&s->uid_spans), labels, tube_runs);
error:
    Py_XDECREF(labels);
    Py_XDECREF(tube_runs);
    return NULL;
}

static void release(Scan *s) {
    Buf *bufs[] = {&s->split_spans, &s->annotated, &s->frames, &s->boxes, &s->uid_index,
                   &s->uid_spans};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]->data);
    for (int t = 0; t < TYPES; t++) {
        free(s->label_rows[t].data);
        free(s->label_ids[t].data);
        free(s->tube_labels[t].data);
        free(s->tube_sizes[t].data);
        free(s->tube_refs[t].data);
    }
    free(s->table.slots);
    free(s->stamps);
}

static PyObject *scan_entry(PyObject *module, PyObject *args) {
    Py_buffer view;
    long long max_frames;
    if (!PyArg_ParseTuple(args, "y*L:scan_entry", &view, &max_frames)) return NULL;
    Scan s;
    memset(&s, 0, sizeof s);
    s.max_frames = max_frames;
    s.p = view.buf;
    s.end = s.p + view.len;
    PyObject *out = NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS /* other threads scan other entries meanwhile */
    status = entry(&s);
    Py_END_ALLOW_THREADS
    if (status == 0) {
        out = results(&s);
    } else if (s.oom) {
        PyErr_NoMemory();
    } else {
        out = Py_NewRef(Py_None);
    }
    release(&s);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef METHODS[] = {
    {"scan_entry", scan_entry, METH_VARARGS,
     "scan_entry(text, max_frames): the arrays of one video entry's JSON text, or None when it "
     "is not in the plain form (or has more than max_frames frames)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_scan",
                                    "Scanner of ROAD/ROAD++ video entries into flat arrays.", -1,
                                    METHODS};

PyMODINIT_FUNC PyInit__scan(void) {
    if (!make_c_locale()) return PyErr_NoMemory();
    return PyModule_Create(&MODULE);
}
