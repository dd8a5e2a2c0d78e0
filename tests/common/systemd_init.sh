#!/bin/sh
# PID 1 of the test container, before it becomes systemd (see
# ../shared/notes/real-systemd.md and tests/common/systemd.rs).
#
# Usage: systemd_init.sh WORK BINARY
#   WORK    a host directory holding share/ (bound at /portwall-test) and
#           root/ (the mount point of the container's tmpfs root); the
#           container's console is WORK/console.log
#   BINARY  the portwall binary under test, bound at /usr/local/bin/portwall
#           (where the shipped portwall@.service expects it)
#
# It runs in fresh mount, PID, network, UTS, IPC and cgroup namespaces and
# builds a volatile root from the host's /usr and a copy of its /etc, then
# execs systemd. Nothing here touches the host: every mount dies with the
# mount namespace.
set -eu
W=$1
BIN=$2
R=$W/root

mount --make-rprivate /
mount -t tmpfs -o mode=755 root "$R"
mkdir -p "$R/usr" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" \
	"$R/var" "$R/root" "$R/portwall-test" "$R/oldroot"
chmod 1777 "$R/tmp"
mount --bind /usr "$R/usr"
mount -o remount,bind,ro "$R/usr"
mount -t tmpfs -o mode=755 bin "$R/usr/local/bin"
touch "$R/usr/local/bin/portwall"
mount --bind "$BIN" "$R/usr/local/bin/portwall"
for d in bin sbin lib lib64; do
	[ -e "/usr/$d" ] && ln -s "usr/$d" "$R/$d"
done

# The host's configuration, minus its enabled services and mounts.
cp -a /etc/. "$R/etc/"
rm -rf "$R"/etc/systemd/system/*.wants
: >"$R/etc/fstab"
systemd-id128 new >"$R/etc/machine-id"
ln -sf /dev/null "$R/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$R/etc/systemd/system/getty.target"
# A host that uses portwall itself must not leak its filters in.
rm -rf "$R/etc/portwall" "$R/etc/systemd/system/portwall@.service" \
	"$R"/etc/systemd/system/*.d/90-portwall.conf

# A private /dev.
mount -t tmpfs -o mode=755,nosuid dev "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
touch "$R/dev/console"
mount --bind "$W/console.log" "$R/dev/console"

# The kernel's file systems: this PID namespace's /proc (its sysctls
# read-only: they are the host's), /sys read-only, a cgroup2 hierarchy
# rooted at the container's cgroup, and a bpffs of its own.
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 -o nsdelegate cgroup2 "$R/sys/fs/cgroup"
mount -t bpf bpf "$R/sys/fs/bpf"

mount --bind "$W/share" "$R/portwall-test"

cd "$R"
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
export container=portwall-test
exec setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-syslog,-wake_alarm \
	/lib/systemd/systemd --log-target=console
