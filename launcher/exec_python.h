/*
 * What both installed commands share: exec this installation's interpreter isolated and
 * without `site` (-I -S), with its site-packages put on sys.path by the code itself.
 *
 * Why: `site` (with Debian's sitecustomize) costs ~3.5 ms of the ~12 ms a venv's Python takes
 * to start, and every container operation starts one. pip's wheel installer cannot give a
 * `#!python` script interpreter options (it drops them), so the command is this launcher.
 * -I also keeps PYTHON* variables and the current directory (a bundle, for pyrunc) off
 * sys.path.
 *
 * The layout it expects is a venv's: bin/<us> beside bin/python3, and
 * lib/PY_VERSION_DIR/site-packages holding PROBE. Anywhere else it runs `python3 -m MODULE`
 * from PATH, with its site.
 */
#ifndef PYRUNC_EXEC_PYTHON_H
#define PYRUNC_EXEC_PYTHON_H

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PY_VERSION_DIR
#define PY_VERSION_DIR "python3"
#endif

/* code: run by `python -I -S -c`; sys.argv[1] is the site-packages dir and sys.argv[2] our
 * own path, which it must pop (paths travel in argv, never spliced into the code). */
static int exec_python(int argc, char **argv, const char *name, const char *probe,
                       const char *code, const char *module) {
    char self[PATH_MAX], dir[PATH_MAX], python[PATH_MAX], site[PATH_MAX], path[PATH_MAX + 64];
    struct stat st;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "%s: /proc/self/exe: %s\n", name, strerror(errno));
        return 2;
    }
    self[n] = 0;
    strcpy(dir, self);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    snprintf(python, sizeof python, "%s/python3", dir);
    snprintf(site, sizeof site, "%s/../lib/" PY_VERSION_DIR "/site-packages", dir);
    snprintf(path, sizeof path, "%s/%s", site, probe);
    char **args = calloc((size_t)argc + 8, sizeof *args);
    if (!args) return 2;
    int k = 0;
    if (access(python, X_OK) == 0 && stat(path, &st) == 0) {
        args[k++] = python; args[k++] = "-I"; args[k++] = "-S"; args[k++] = "-c";
        args[k++] = (char *)code; args[k++] = site; args[k++] = self;
    } else {
        args[k++] = "python3"; args[k++] = "-m"; args[k++] = (char *)module;
    }
    for (int i = 1; i < argc; i++) args[k++] = argv[i];
    args[k] = NULL;
    execvp(args[0], args);
    fprintf(stderr, "%s: exec %s: %s\n", name, args[0], strerror(errno));
    return 2;
}

#endif
