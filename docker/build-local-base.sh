#!/usr/bin/env bash
# Makes a Debian bookworm base image for building Open Chat's image on a machine with no
# container registry: installs Debian's docker.io, docker-compose and debootstrap when missing,
# starts dockerd when it is not running, and builds the base once (`debootstrap
# --variant=minbase` from apt's own mirror, then `docker import`); later runs reuse it.
#
# Prints machine-readable lines on stdout (everything else goes to stderr):
#   base-image=NAME:TAG          the image to pass as --build-arg BASE_IMAGE=...
#   dockerd-started-pid=PID      only when this run started dockerd (the caller stops it)
# Needs root (apt-get, dockerd, debootstrap). Environment:
#   OPENCHAT_BASE_IMAGE  image name (default openchat-local-base:bookworm)
#   DOCKERD_LOG          dockerd's log when started here (default /var/log/openchat-dockerd.log)
set -euo pipefail

BASE_IMAGE=${OPENCHAT_BASE_IMAGE:-openchat-local-base:bookworm}
SUITE=bookworm
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/openchat-dockerd.log}
# Debian's client matches Debian's daemon; another `docker` earlier on PATH may not.
DOCKER=/usr/bin/docker

say() { echo "build-local-base: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages, starts dockerd and runs debootstrap)"

install_missing_packages() {
    local missing=()
    [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
}

start_dockerd_if_needed() {
    if "$DOCKER" info >/dev/null 2>&1; then
        return 0
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: dockerd must outlive this script and the caller's process group.
    setsid /usr/sbin/dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$!
    for _ in $(seq 1 120); do
        if "$DOCKER" info >/dev/null 2>&1; then
            echo "dockerd-started-pid=$pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "dockerd exited at start; see $DOCKERD_LOG"
        sleep 0.5
    done
    die "dockerd did not answer within 60 s; see $DOCKERD_LOG"
}

# The Debian mirror apt already uses (deb822 .sources files or one-line sources.list entries).
debian_mirror() {
    local file uri
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        uri=$(awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (u != "" && s) { print u; exit } u = ""; s = 0; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) s = 1 }
            END { if (u != "" && s) print u }' "$file" | head -n 1)
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        uri=$(awk -v suite="$SUITE" '$1 == "deb" {
                for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { u = $i; break }
                if ($(i + 1) == suite) { print u; exit } }' "$file")
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    echo "http://deb.debian.org/debian"
}

build_base() {
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/openchat-base.XXXXXX)
    # The half-built tree never outlives this function, whatever happens.
    trap 'rm -rf "$rootfs"' RETURN
    say "debootstrap --variant=minbase $SUITE from $mirror"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" >&2
    # The host's extra certificate authorities (a TLS-inspecting egress proxy, for one), so
    # pip inside the build can reach the package index.
    local cert
    for cert in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$cert" ] && cp "$cert" "$rootfs/usr/local/share/ca-certificates/"
    done
    chroot "$rootfs" update-ca-certificates >&2
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/cache/apt/*.bin
    say "docker import as $BASE_IMAGE"
    tar -C "$rootfs" -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE_IMAGE" >&2
}

install_missing_packages
start_dockerd_if_needed
if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE exists; not rebuilding it"
else
    build_base
fi
echo "base-image=$BASE_IMAGE"
