"""config.md: root, mounts, process (args, env, cwd, user, rlimits, capabilities, ...), hostname,
annotations, extensibility and valid values.

Each test runs one container whose own process reports what it got (/proc/self/status,
/proc/self/limits, id, pwd, umask, ...), so the assertion is about what the kernel gives the
container, not about what the runtime meant to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Bundle, Runtime, mountinfo_line, unique_id
from helpers import create_fails, create_or_start_fails, fields, run_ok

pytestmark = pytest.mark.integration

# the kernel's numbers (linux/capability.h) of the capabilities these tests configure
CAP_NUMBERS = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10}


def _mask(names: list[str]) -> int:
    """The Cap* mask /proc/self/status shows for exactly these capabilities."""
    return sum(1 << CAP_NUMBERS[n] for n in set(names))


def _limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/self/limits as {"Max open files": (soft, hard)}."""
    out = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        parts = line[26:].split()
        out[name] = (parts[0], parts[1])
    return out


# --- Specification version ---------------------------------------------------------------------


@pytest.mark.spec(
    "config.md#specification-version",
    "ociVersion (string, REQUIRED) MUST be in SemVer v2.0.0 format and specifies the version of "
    "the Open Container Initiative Runtime Specification with which the bundle complies. The "
    "Open Container Initiative Runtime Specification follows semantic versioning and retains "
    "forward and backward compatibility within major versions.",
)
def test_oci_version_of_same_major_accepted(rt: Runtime, bundle: Bundle) -> None:
    """A bundle written for another 1.x release of the spec must still run."""
    bundle.config["ociVersion"] = "1.0.0"
    assert run_ok(rt, bundle, "echo ok").strip() == "ok"


# --- Root --------------------------------------------------------------------------------------


@pytest.mark.spec(
    "config.md#root",
    "path (string, REQUIRED) Specifies the path to the root filesystem for the container. A "
    "directory MUST exist at the path declared by the field.",
)
def test_root_path_missing_errors(rt: Runtime, bundle: Bundle) -> None:
    """A root.path naming nothing cannot be a container's root: create fails, nothing stays."""
    bundle.config["root"]["path"] = "no-such-rootfs"
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config.md#root",
    "path (string, REQUIRED) Specifies the path to the root filesystem for the container. On "
    "POSIX platforms, path is either an absolute path or a relative path to the bundle.",
)
def test_root_path_absolute_and_relative(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """An absolute root.path outside the bundle is the container's /, as a relative one is."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    bundle.rootfs.rename(other / "rootfs")
    (other / "rootfs" / "which-root").write_text("elsewhere\n")
    bundle.config["root"]["path"] = str(other / "rootfs")
    assert run_ok(rt, bundle, "cat /which-root").strip() == "elsewhere"


@pytest.mark.spec(
    "config.md#root",
    "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the "
    "container, defaults to false.",
)
def test_root_readonly_true(rt: Runtime, bundle: Bundle) -> None:
    """Writes to the root fail with EROFS, and the / mount is ro in mountinfo."""
    bundle.config["root"]["readonly"] = True
    out = run_ok(rt, bundle, "touch /probe 2>&1 || true; cat /proc/self/mountinfo")
    assert "Read-only file system" in out.splitlines()[0], out
    root = mountinfo_line(out, "/")
    assert root and "ro" in root[-1].split()[5].split(","), root
    assert not (bundle.rootfs / "probe").exists()


@pytest.mark.spec(
    "config.md#root",
    "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the "
    "container, defaults to false.",
)
def test_root_readonly_defaults_to_false(rt: Runtime, bundle: Bundle) -> None:
    """Without `readonly` the root is writable, and the write lands in the rootfs directory."""
    del bundle.config["root"]["readonly"]
    assert run_ok(rt, bundle, "echo w > /probe && cat /probe").strip() == "w"
    assert (bundle.rootfs / "probe").read_text() == "w\n"


# --- Mounts ------------------------------------------------------------------------------------


@pytest.mark.spec("config.md#mounts", "The runtime MUST mount entries in the listed order.")
def test_mounts_in_listed_order(rt: Runtime, bundle: Bundle) -> None:
    """Two tmpfs on one destination: the later one is on top; a nested mount listed after its
    parent stays visible (listed before, the parent would hide it)."""
    bundle.add_mount("/m", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/m", "tmpfs", "tmpfs", ["size=2m"])
    bundle.add_mount("/m/sub", "tmpfs", "tmpfs", ["size=3m"])
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo")
    at_m = mountinfo_line(out, "/m")
    assert len(at_m) == 2, out
    assert "size=1024k" in at_m[0] and "size=2048k" in at_m[1], at_m
    sub = mountinfo_line(out, "/m/sub")
    assert len(sub) == 1 and "size=3072k" in sub[0], out
    ids = [ln.split()[0] for ln in at_m]
    assert sub[0].split()[1] == ids[1], "/m/sub must be mounted on the second /m"


# --- Process -----------------------------------------------------------------------------------


@pytest.mark.spec(
    "config.md#process",
    "args (array of strings, OPTIONAL) with similar semantics to IEEE Std 1003.1-2008 execvp's "
    "argv. This specification extends the IEEE standard in that at least one entry is REQUIRED "
    "(non-Windows), and that entry is used with the same semantics as execvp's file.",
)
def test_args_verbatim_with_path_lookup(rt: Runtime, bundle: Bundle) -> None:
    """argv reaches the program unchanged (spaces, empty strings, globs), and a bare name is
    looked up in PATH as execvp does."""
    bundle.args("printf", "[%s]", "a b", "", "*", "$HOME")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert r.out == "[a b][][*][$HOME]"


@pytest.mark.spec(
    "config.md#process",
    "This specification extends the IEEE standard in that at least one entry is REQUIRED "
    "(non-Windows), and that entry is used with the same semantics as execvp's file.",
)
def test_empty_args_errors(rt: Runtime, bundle: Bundle) -> None:
    """With no argv[0] there is nothing to exec: create or start must fail."""
    bundle.process["args"] = []
    create_or_start_fails(rt, bundle)


@pytest.mark.spec(
    "config.md#process",
    "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ.",
)
def test_env_is_exactly_the_configured_environ(rt: Runtime, bundle: Bundle) -> None:
    """The program's environ holds the configured entries verbatim (`=` and spaces in values)."""
    env = [
        "PATH=/usr/bin:/bin",
        "HOME=/root",
        "SPEC_A=x y z",
        "SPEC_B=k=v",
        "SPEC_EMPTY=",
    ]
    bundle.process["env"] = env
    bundle.args("env")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert sorted(r.out.splitlines()) == sorted(env)


@pytest.mark.spec(
    "config.md#process",
    "cwd (string, REQUIRED) is the working directory that will be set for the executable. This "
    "value MUST be an absolute path.",
)
def test_cwd_is_set(rt: Runtime, bundle: Bundle) -> None:
    """The program starts in cwd (the runtime creates it if the rootfs lacks it, as runc)."""
    bundle.process["cwd"] = "/var/run"
    assert run_ok(rt, bundle, "pwd").strip() == "/var/run"


@pytest.mark.spec(
    "config.md#process",
    "cwd (string, REQUIRED) is the working directory that will be set for the executable. This "
    "value MUST be an absolute path.",
)
def test_relative_cwd_errors(rt: Runtime, bundle: Bundle) -> None:
    """A relative cwd is an invalid value: create (or start) fails."""
    bundle.process["cwd"] = "tmp"
    create_or_start_fails(rt, bundle.args("true"))


@pytest.mark.spec(
    "config.md#posix-platform-user",
    "uid (int, REQUIRED) specifies the user ID in the container namespace. gid (int, REQUIRED) "
    "specifies the group ID in the container namespace.",
)
def test_user_uid_gid(rt: Runtime, bundle: Bundle) -> None:
    """Real, effective, saved and filesystem ids are all the configured ones."""
    bundle.process["user"] = {"uid": 1234, "gid": 2345}
    st = fields(run_ok(rt, bundle, "cat /proc/self/status"))
    assert st["Uid"].split() == ["1234"] * 4
    assert st["Gid"].split() == ["2345"] * 4


@pytest.mark.spec(
    "config.md#posix-platform-user",
    "additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the container "
    "namespace to be added to the process.",
)
def test_user_additional_gids(rt: Runtime, bundle: Bundle) -> None:
    """The supplementary groups are the configured ones."""
    bundle.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100, 4000]}
    st = fields(run_ok(rt, bundle, "cat /proc/self/status"))
    assert {int(g) for g in st["Groups"].split()} - {1000} == {5, 100, 4000}


@pytest.mark.spec(
    "config.md#posix-platform-user",
    "umask (int, OPTIONAL) is the umask of the user. If unspecified, the umask should not be "
    "changed from the calling process' umask.",
)
def test_user_umask(rt: Runtime, bundle: Bundle) -> None:
    """The program runs with the configured umask, and files it creates get it."""
    bundle.process["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    out = run_ok(rt, bundle, "umask; touch /dev/shm/f; stat -c %a /dev/shm/f").split()
    assert out == ["0027", "640"]


@pytest.mark.parametrize(
    "rlimits, column, want",
    [
        pytest.param(
            [
                {"type": "RLIMIT_NOFILE", "soft": 500, "hard": 1000},
                {"type": "RLIMIT_NPROC", "soft": 300, "hard": 700},
            ],
            0,
            {"Max open files": "500", "Max processes": "300"},
            marks=pytest.mark.spec(
                "config.md#posix-process",
                "soft (uint64, REQUIRED) is the value of the limit enforced for the corresponding "
                "resource. rlim.rlim_cur MUST match the configured value.",
            ),
            id="soft",
        ),
        pytest.param(
            [
                {"type": "RLIMIT_NOFILE", "soft": 500, "hard": 1000},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
            ],
            1,
            {"Max open files": "1000", "Max core file size": "4096"},
            marks=pytest.mark.spec(
                "config.md#posix-process",
                "hard (uint64, REQUIRED) is the ceiling for the soft limit that could be set by "
                "an unprivileged process. rlim.rlim_max MUST match the configured value.",
            ),
            id="hard",
        ),
    ],
)
def test_rlimit_values(
    rt: Runtime, bundle: Bundle, rlimits: list[dict[str, object]], column: int, want: dict[str, str]
) -> None:
    """getrlimit in the container (as /proc/self/limits shows it) gives each configured soft
    value as rlim_cur and each hard value as rlim_max, also a hard one above the host's."""
    bundle.process["rlimits"] = rlimits
    bundle.args("cat", "/proc/self/limits")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    lim = _limits(r.out)
    assert {name: lim[name][column] for name in want} == want


@pytest.mark.spec(
    "config.md#posix-process",
    "The runtime MUST generate an error for any values which cannot be mapped to a relevant "
    "kernel interface.",
)
def test_rlimit_invalid_type_errors(rt: Runtime, bundle: Bundle) -> None:
    """An rlimit type the kernel does not have is refused at create, leaving nothing."""
    bundle.process["rlimits"] = [{"type": "RLIMIT_SPEC_BOGUS", "soft": 1, "hard": 1}]
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config.md#posix-process",
    "If rlimits contains duplicated entries with same type, the runtime MUST generate an error.",
)
def test_rlimit_duplicate_type_errors(rt: Runtime, bundle: Bundle) -> None:
    """Two entries for one resource are ambiguous: create must fail."""
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200},
    ]
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config.md#linux-process",
    "capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of "
    "capabilities for the process. effective, bounding, inheritable, permitted, ambient "
    "(array of strings, OPTIONAL) ... set of capabilities for the process.",
)
def test_capability_sets(rt: Runtime, bundle: Bundle) -> None:
    """A non-root process (whose sets execve does not widen) holds exactly the five configured
    sets, with a bounding set larger than the others."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
    rest = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": bnd,
        **{k: list(rest) for k in ("effective", "permitted", "inheritable", "ambient")},
    }
    bundle.args("cat", "/proc/self/status")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    st = fields(r.out)
    assert int(st["CapBnd"], 16) == _mask(bnd)
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[key], 16) == _mask(rest), key


@pytest.mark.spec(
    "config.md#linux-process",
    "bounding (array of strings, OPTIONAL) field contains an array of bounding capabilities "
    "for the process.",
)
def test_capabilities_outside_bounding_are_absent(rt: Runtime, bundle: Bundle) -> None:
    """Even as root, a capability left out of the configured sets is unusable: CAP_SYS_ADMIN is
    in no set and `mount` fails; CAP_CHOWN is absent and chown fails."""
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    bundle.config["root"]["readonly"] = False
    out = run_ok(
        rt,
        bundle,
        "grep ^CapBnd /proc/self/status; mount -t tmpfs t /mnt 2>/dev/null && echo mounted;"
        " touch /tmp/f; chown 1:1 /tmp/f 2>/dev/null && echo chowned; echo end",
    )
    lines = out.split()
    assert int(lines[1], 16) == _mask(caps)
    assert lines[2:] == ["end"], out


@pytest.mark.xfail(
    strict=True,
    reason="runc 1.1.5 and pyrunc (following it) ignore unknown capability names with a "
    "warning instead of failing",
)
@pytest.mark.spec(
    "config.md#linux-process",
    "Any value which cannot be mapped to a relevant kernel interface MUST cause an error.",
)
def test_unknown_capability_errors(rt: Runtime, bundle: Bundle) -> None:
    """A capability name the kernel does not know makes create fail."""
    bundle.process["capabilities"]["bounding"].append("CAP_SPEC_BOGUS")
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config.md#linux-process",
    "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from "
    "gaining additional privileges.",
)
def test_no_new_privileges(rt: Runtime, bundle: Bundle) -> None:
    """The kernel's no_new_privs bit is set for the program (and so for what it execs)."""
    bundle.process["noNewPrivileges"] = True
    assert fields(run_ok(rt, bundle, "cat /proc/self/status"))["NoNewPrivs"] == "1"


@pytest.mark.spec(
    "config.md#linux-process",
    "oomScoreAdj (int, OPTIONAL) adjusts the oom-killer score in [pid]/oom_score_adj for the "
    "process's [pid] in a proc pseudo-filesystem. If oomScoreAdj is set, the runtime MUST set "
    "oom_score_adj to the given value.",
)
def test_oom_score_adj_set(rt: Runtime, bundle: Bundle) -> None:
    """The program's oom_score_adj is the configured value."""
    bundle.process["oomScoreAdj"] = 345
    bundle.args("cat", "/proc/self/oom_score_adj")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert r.out.strip() == "345"


@pytest.mark.spec(
    "config.md#linux-process",
    "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj.",
)
def test_oom_score_adj_unset_is_inherited(rt: Runtime, bundle: Bundle) -> None:
    """With the runtime started at oom_score_adj 123 (and none configured) the program has 123:
    the value is inherited, not reset to 0."""
    bundle.process.pop("oomScoreAdj", None)
    bundle.args("cat", "/proc/self/oom_score_adj")
    with open("/proc/self/oom_score_adj") as f:
        saved = f.read().strip()
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("123")
        r = rt.run(unique_id(), bundle)
    finally:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(saved)
    assert r.rc == 0, r
    assert r.out.strip() == "123"


@pytest.mark.spec(
    "config.md#process",
    "consoleSize (object, OPTIONAL) specifies the console size in characters of the terminal. "
    "Runtimes MUST ignore consoleSize if terminal is false or unset.",
)
def test_console_size_ignored_without_terminal(rt: Runtime, bundle: Bundle) -> None:
    """terminal unset (false by default) plus a consoleSize: no console socket is needed, the
    program runs with non-tty stdio and no /dev/console."""
    bundle.process.pop("terminal", None)
    bundle.process["consoleSize"] = {"height": 40, "width": 100}
    out = run_ok(
        rt,
        bundle,
        "for fd in 0 1 2; do [ -t $fd ] && echo tty$fd; done; "
        "[ -e /dev/console ] && echo console; echo end",
    )
    assert out.split() == ["end"]


# --- Hostname ----------------------------------------------------------------------------------


@pytest.mark.spec(
    "config.md#hostname",
    "hostname (string, OPTIONAL) specifies the container's hostname as seen by processes "
    "running inside the container. On Linux, for example, this will change the hostname in the "
    "container UTS namespace.",
)
def test_hostname(rt: Runtime, bundle: Bundle) -> None:
    """uname's nodename in the container is the configured one (the host's is untouched)."""
    with open("/proc/sys/kernel/hostname") as f:
        host = f.read()
    bundle.config["hostname"] = "spec-host-name"
    assert run_ok(rt, bundle, "hostname; uname -n").split() == ["spec-host-name"] * 2
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read() == host


@pytest.mark.runc_deviation(
    "runc 1.1.5 implements spec 1.0.2, which has no domainname (an unknown property, ignored)"
)
@pytest.mark.spec(
    "config.md#domainname",
    "domainname (string, OPTIONAL) specifies the container's domainname as seen by processes "
    "running inside the container. On Linux, for example, this will change the domainname in "
    "the container UTS namespace.",
)
def test_domainname(rt: Runtime, bundle: Bundle) -> None:
    """The NIS domain name in the container is the configured one (added in spec 1.1)."""
    bundle.config["domainname"] = "spec.example"
    assert run_ok(rt, bundle, "cat /proc/sys/kernel/domainname").strip() == "spec.example"


# --- Annotations, extensibility, valid values --------------------------------------------------


@pytest.mark.spec(
    "config.md#annotations",
    "Implementations that are reading/processing this configuration file MUST NOT generate an "
    "error if they encounter an unknown annotation key.",
)
def test_unknown_annotations_ignored(rt: Runtime, bundle: Bundle) -> None:
    """Arbitrary annotation keys do not stop or change the container."""
    bundle.config["annotations"] = {
        "com.example.spec-test": "1",
        "org.opencontainers.image.unknown-key": "x",
    }
    assert run_ok(rt, bundle, "echo ok").strip() == "ok"


@pytest.mark.spec(
    "config.md#extensibility",
    "Runtimes that are reading or processing this configuration file MUST NOT generate an error "
    "if they encounter an unknown property. Instead they MUST ignore unknown properties.",
)
def test_unknown_properties_ignored(rt: Runtime, bundle: Bundle) -> None:
    """Unknown keys at the top level, in process and in linux are ignored."""
    bundle.config["specTestUnknown"] = {"a": [1, 2]}
    bundle.process["specTestUnknown"] = "x"
    bundle.linux["specTestUnknown"] = 7
    assert run_ok(rt, bundle, "echo ok").strip() == "ok"


@pytest.mark.spec(
    "config.md#valid-values",
    "Runtimes that are reading or processing this configuration file MUST generate an error "
    "when invalid or unsupported values are encountered.",
)
def test_unsupported_mount_type_errors(rt: Runtime, bundle: Bundle) -> None:
    """A mount of a filesystem type the kernel does not have fails create, leaving nothing."""
    bundle.add_mount("/x", "none", "specbogusfs", [])
    create_fails(rt, bundle)


# --- What this machine cannot exercise ---------------------------------------------------------


@pytest.mark.spec(
    "config.md#linux-process",
    "selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process.",
)
def test_selinux_process_label(rt: Runtime, bundle: Bundle) -> None:
    """The process runs with the configured label (needs an SELinux-enabled host)."""
    if not os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is not enabled on this host")
    bundle.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    assert "container_t" in run_ok(rt, bundle, "cat /proc/self/attr/current")


@pytest.mark.spec(
    "config.md#linux-process",
    "apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the "
    "process.",
)
def test_apparmor_profile(rt: Runtime, bundle: Bundle) -> None:
    """The process runs confined by the profile (needs AppArmor with the profile loaded)."""
    profiles = Path("/sys/kernel/security/apparmor/profiles")
    if not profiles.exists():
        pytest.skip("AppArmor is not enabled on this host")
    names = [ln.split(" (")[0] for ln in profiles.read_text().splitlines()]
    if not names:
        pytest.skip("no AppArmor profile is loaded")
    bundle.process["apparmorProfile"] = names[0]
    assert names[0] in run_ok(rt, bundle, "cat /proc/self/attr/current")


@pytest.mark.parametrize(
    "doc", ["config-windows.md", "config-solaris.md", "config-vm.md", "config-zos.md"]
)
@pytest.mark.spec(
    "config.md#platform-specific-configuration",
    "windows (object, OPTIONAL) Windows-specific configuration. This MUST be set if the target "
    "platform of this spec is windows. (and the MUSTs of the Solaris, VM and z/OS sections)",
)
def test_non_linux_platform_sections(doc: str) -> None:
    """The Windows, Solaris, VM and z/OS sections apply to other kinds of runtime."""
    pytest.skip(f"{doc}: not applicable to a Linux namespace-container runtime on this host")
