#!/bin/sh
# Make an OCI bundle with a busybox rootfs from Debian's busybox-static (no network needed).
# usage: tools/make-busybox-bundle.sh DIR [RUNTIME]   -> DIR/config.json, DIR/rootfs
set -eu
dir=$1
runtime=${2:-pyrunc}
bb=$(command -v busybox || echo /bin/busybox)
[ -x "$bb" ] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir/rootfs"
cd "$dir/rootfs"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home var/run
chmod 1777 tmp
cp "$bb" bin/busybox
for app in $(bin/busybox --list-full); do
	[ -e "$app" ] || ln bin/busybox "$app" 2>/dev/null || true
done
cat >etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat >etc/group <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
nogroup:x:65534:
G
cd ..
rm -f config.json
"$runtime" spec
# non-interactive by default: callers edit args/terminal with jq as runc's tests do
sed -i 's/"terminal": true/"terminal": false/' config.json
