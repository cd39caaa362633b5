#!/usr/bin/env bash
# Build a local stand-in for the `python:3.11-slim` base image from Debian's own packages.
#
# Why: on machines where no container registry answers (CI, air-gapped validators) nothing can
# be pulled, yet miners' env folders say `FROM python:3.11-slim`. Debian bookworm ships Python
# 3.11, so a debootstrap'd bookworm with python3 + pip, imported into Docker under that tag, lets
# an unmodified env folder build here as it would anywhere.
#
# Usage: scripts/build_base_image.sh [--force] [--tag TAG] [--mirror URL] [--no-host-ca]
#   --force       rebuild even if TAG already exists
#   --tag         image tag to create (default: python:3.11-slim, or $BASE_IMAGE_TAG)
#   --mirror      Debian mirror (default: http://deb.debian.org/debian, or $DEBIAN_MIRROR)
#   --no-host-ca  do not copy CA certificates that this host trusts beyond Debian's set
#                 (they are copied by default, so `pip install` in builds works behind a
#                 TLS-inspecting proxy exactly as it does on the host)
# Needs root (debootstrap) and a Docker daemon. Installs debootstrap with apt-get if missing.
set -euo pipefail

TAG="${BASE_IMAGE_TAG:-python:3.11-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="bookworm"
FORCE=0
HOST_CA=1
HOST_BUNDLE="/etc/ssl/certs/ca-certificates.crt"

die() { echo "build_base_image: error: $*" >&2; exit 1; }
say() { echo "build_base_image: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --no-host-ca) HOST_CA=0 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; TAG="$2"; shift ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a value"; MIRROR="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
  shift
done

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker daemon answers (is dockerd running, may this user use it?)"

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already exists ($(docker image inspect --format '{{.Id}}' "$TAG")); use --force to rebuild"
  exit 0
fi

OLD_ID=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
[ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root (sudo $0 $*)"

START=$(date +%s)

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap with apt-get"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || die "apt-get install debootstrap failed"
fi

ROOTFS="$(mktemp -d /tmp/subnet-base-rootfs.XXXXXX)"
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

say "debootstrap $SUITE (minbase) from $MIRROR into $ROOTFS"
# minbase + Depends only (debootstrap never installs Recommends): no compilers, no docs tools.
debootstrap --variant=minbase --components=main \
  --include=python3,python3-pip,python3-venv,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; die "debootstrap failed (log tail above)"; }
rm -f "$ROOTFS.log"

say "making python/pip behave like the official image"
# PEP 668: Debian marks its Python "externally managed"; the official image does not, and env
# Dockerfiles run a bare `pip install -r requirements.txt`.
rm -f "$ROOTFS"/usr/lib/python3*/EXTERNALLY-MANAGED
ln -sf python3 "$ROOTFS/usr/bin/python"
[ -e "$ROOTFS/usr/bin/pip" ] || ln -sf pip3 "$ROOTFS/usr/bin/pip"
# Keep later `apt-get install` in env Dockerfiles working, and keep docs out of those layers too.
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
mkdir -p "$ROOTFS/etc/dpkg/dpkg.cfg.d"
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/01-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

EXTRA_ENV=()
if [ "$HOST_CA" = 1 ] && [ -s "$HOST_BUNDLE" ]; then
  # Certificates in the host's bundle that Debian's ca-certificates does not ship (e.g. a
  # proxy's CA) go to /usr/local/share/ca-certificates, which survives update-ca-certificates.
  EXTRA=$(python3 - "$HOST_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt" \
    "$ROOTFS/usr/local/share/ca-certificates" <<'PY'
import re, sys, pathlib
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
norm = lambda block: "".join(block.split())
host = pem.findall(pathlib.Path(sys.argv[1]).read_text(errors="replace"))
have = {norm(b) for b in pem.findall(pathlib.Path(sys.argv[2]).read_text(errors="replace"))}
out = pathlib.Path(sys.argv[3]); out.mkdir(parents=True, exist_ok=True)
extra = [b for b in host if norm(b) not in have]
for i, block in enumerate(extra):
    (out / f"host-extra-{i}.crt").write_text(block + "\n")
print(len(extra))
PY
  ) || die "could not compare CA bundles"
  if [ "$EXTRA" -gt 0 ]; then
    chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the rootfs"
    EXTRA_ENV=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
    say "added $EXTRA CA certificate(s) that this host trusts (--no-host-ca to skip)"
  fi
fi

say "trimming docs, caches and apt lists"
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
  "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
  "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/* "$ROOTFS"/debootstrap "$ROOTFS"/root/.cache
find "$ROOTFS/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
find "$ROOTFS/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

say "importing as $TAG"
# Same ENV and CMD as the official image, plus no pip self-update probe (nothing reaches out at run time).
IMAGE_ID=$(tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PYTHON_VERSION=3.11' \
  --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
  --change 'CMD ["python3"]' \
  "${EXTRA_ENV[@]}" \
  --message "debootstrap $SUITE minbase + python3 (scripts/build_base_image.sh)" \
  - "$TAG") || die "docker import failed"

# Smoke test: the things an env Dockerfile relies on.
docker run --rm --network none "$TAG" sh -c 'python --version && pip --version >/dev/null && python -c "import venv, ssl, sqlite3"' >&2 \
  || die "smoke test of $TAG failed"

# A --force rebuild leaves the previous image untagged; drop it unless other images build on it.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$IMAGE_ID" ]; then
  docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi

END=$(date +%s)
SIZE=$(docker image inspect --format '{{.Size}}' "$TAG")
say "built $TAG ($IMAGE_ID), $((SIZE / 1024 / 1024)) MiB, in $((END - START)) s"
