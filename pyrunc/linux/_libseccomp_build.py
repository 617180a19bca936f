"""Build script for the libseccomp binding (cffi out-of-line ABI mode, run by setup.py).

ABI mode because the binding must come with a plain `pip install` on any CPython >= 3.11: it
needs neither a compiler nor libseccomp's headers (libseccomp-dev), only the shared library
at run time (Debian's libseccomp2, which runc needs too). Out-of-line because the
declarations below are parsed here, at install time, into a small generated module
(pyrunc/linux/_libseccomp.py): nothing parses C at run time. pyrunc/linux/libseccomp.py is
the one module that imports the result.

The declarations are libseccomp 2.5's seccomp.h, reduced to what pyrunc calls and written so
that the ABI is the header's without the header: enums are passed as int (their C type here:
every enumerator fits in an int), scmp_filter_ctx is an opaque pointer, and the constants
(actions, arch tokens, attributes, operators) are plain numbers in libseccomp.py, checked
against the header by tests/unit/test_libseccomp.py when it is installed.
"""

from cffi import FFI

ffibuilder = FFI()

ffibuilder.cdef(
    """
    typedef void *scmp_filter_ctx;

    struct scmp_version {
        unsigned int major;
        unsigned int minor;
        unsigned int micro;
    };

    /* `op` is enum scmp_compare in seccomp.h */
    struct scmp_arg_cmp {
        unsigned int arg;
        int op;
        uint64_t datum_a;
        uint64_t datum_b;
    };

    const struct scmp_version *seccomp_version(void);
    unsigned int seccomp_api_get(void);

    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);

    uint32_t seccomp_arch_resolve_name(const char *arch_name);
    uint32_t seccomp_arch_native(void);
    int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);

    /* `attr` is enum scmp_filter_attr in seccomp.h */
    int seccomp_attr_get(const scmp_filter_ctx ctx, int attr, uint32_t *value);
    int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);

    int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);

    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);

    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
    """
)

ffibuilder.set_source("pyrunc.linux._libseccomp", None)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
