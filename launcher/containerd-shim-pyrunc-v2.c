/*
 * containerd-shim-pyrunc-v2's launcher: the file containerd runs for every container.
 *
 * Why C: containerd 1.6 runs `<shim> ... delete` after every shim disconnect, a clean one
 * included, and `ctr run --rm` waits for it; a Python process spends ~15 ms just starting.
 * When nothing is left to clean up (no pyrunc state for the id, no runtime-binary options
 * saved in the bundle, rootfs not mounted: the normal case after a clean Delete) this answers
 * the DeleteResponse itself. Everything else runs the shim in Python (exec_python.h).
 *
 * Built by setup.py (build_scripts) with the interpreter's version compiled in.
 */
#include "exec_python.h"

#include <stdint.h>
#include <time.h>

#define STATE_ROOT "/run/containerd/pyrunc"
#define OPTIONS_FILE "pyrunc-shim-options.json"

static size_t varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

/* containerd.task.v2.DeleteResponse{exit_status=137, exited_at=now}: the same bytes as
 * shim_v2.main.delete_response(0, 137, now) (tests/unit/test_shim.py compares them). */
static int write_delete_response(void) {
    struct timespec ts;
    uint8_t tsbuf[32], out[64];
    size_t t = 0, n = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec) { tsbuf[t++] = 0x08; t += varint(tsbuf + t, (uint64_t)ts.tv_sec); }
    if (ts.tv_nsec) { tsbuf[t++] = 0x10; t += varint(tsbuf + t, (uint64_t)ts.tv_nsec); }
    out[n++] = 0x10; n += varint(out + n, 137);
    out[n++] = 0x1a; n += varint(out + n, t);
    memcpy(out + n, tsbuf, t); n += t;
    return write(1, out, n) == (ssize_t)n ? 0 : 1;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* rootfs is a mount point when it sits on another device than the bundle */
static int mounted(const char *bundle) {
    char path[PATH_MAX];
    struct stat a, b;
    if (snprintf(path, sizeof path, "%s/rootfs", bundle) >= (int)sizeof path) return 1;
    if (stat(path, &a) != 0) return 0;
    if (stat(bundle, &b) != 0) return 1;
    return a.st_dev != b.st_dev;
}

static int nothing_left(const char *ns, const char *id, const char *bundle) {
    char path[PATH_MAX];
    if (!*ns || !*id || strchr(id, '/') || strchr(ns, '/')) return 0;
    if (snprintf(path, sizeof path, STATE_ROOT "/%s/%s", ns, id) >= (int)sizeof path) return 0;
    if (exists(path)) return 0;
    if (snprintf(path, sizeof path, "%s/" OPTIONS_FILE, bundle) >= (int)sizeof path) return 0;
    if (exists(path)) return 0;
    return !mounted(bundle);
}

int main(int argc, char **argv) {
    const char *ns = "", *id = "", *bundle = NULL, *action = "";
    char cwd[PATH_MAX];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            const char *name = a + (a[1] == '-' ? 2 : 1);
            if (strchr(name, '=')) continue;
            if (i + 1 < argc && (!strcmp(name, "namespace") || !strcmp(name, "id") ||
                                 !strcmp(name, "bundle") || !strcmp(name, "address") ||
                                 !strcmp(name, "publish-binary") || !strcmp(name, "socket"))) {
                if (!strcmp(name, "namespace")) ns = argv[i + 1];
                else if (!strcmp(name, "id")) id = argv[i + 1];
                else if (!strcmp(name, "bundle")) bundle = argv[i + 1];
                i++;
            }
        } else {
            action = a;
        }
    }
    if (!bundle) bundle = getcwd(cwd, sizeof cwd) ? cwd : ".";
    if (!strcmp(action, "delete") && nothing_left(ns, id, bundle))
        return write_delete_response();

    /* the code pops the site-packages dir and our path (exec_python.h) */
    static const char code[] = "import sys;sys.path[:0]=[sys.argv.pop(1)];"
                               "sys.argv[0]=sys.argv.pop(1);from shim_v2.main import entry;entry()";
    return exec_python(argc, argv, "containerd-shim-pyrunc-v2", "shim_v2/main.py", code,
                       "shim_v2.main");
}
