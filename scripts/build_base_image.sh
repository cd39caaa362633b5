#!/usr/bin/env bash
# Provide the `python:3.11-slim` base image that env Dockerfiles start FROM: the official image
# where a registry answers, else a local stand-in built from Debian's own packages.
#
# Why: on machines where no container registry answers (CI, air-gapped validators) nothing can
# be pulled, yet miners' env folders say `FROM python:3.11-slim`. The script first tries to pull
# the official image; only if that fails does it debootstrap a Debian bookworm with python3 + pip
# and import it under that tag, so an unmodified env folder builds here as it would anywhere. The
# stand-in is labelled io.subnet.base-image=stand-in (it is NOT the official image); find it with
#   docker images --filter label=io.subnet.base-image=stand-in
# and remove it with `docker image rm` once a registry answers, then run this script again.
#
# Usage: scripts/build_base_image.sh [--force] [--tag TAG] [--source REF] [--no-pull] [--dry-run]
#                                    [--mirror URL] [--no-host-ca]
#   --force       replace TAG even if it already exists
#   --tag         image tag to provide (default: python:3.11-slim, or $BASE_IMAGE_TAG)
#   --source      image to pull first (default: the official python:3.11-slim, or $BASE_IMAGE_SOURCE)
#   --no-pull     do not try a registry; build the stand-in
#   --dry-run     try the pull, then only say what would be built (nothing is built)
#   --mirror      Debian mirror (default: http://deb.debian.org/debian, or $DEBIAN_MIRROR)
#   --no-host-ca  do not copy CA certificates that this host trusts beyond Debian's set
#                 (they are copied by default, so `pip install` in builds works behind a
#                 TLS-inspecting proxy exactly as it does on the host)
# Building the stand-in needs root (debootstrap) and a Docker daemon; debootstrap is installed
# with apt-get if missing.
set -euo pipefail

TAG="${BASE_IMAGE_TAG:-python:3.11-slim}"
SOURCE="${BASE_IMAGE_SOURCE:-python:3.11-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE="bookworm"
FORCE=0
PULL=1
DRY_RUN=0
HOST_CA=1
HOST_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
STANDIN_LABEL="io.subnet.base-image=stand-in"
PULL_TIMEOUT="${BASE_IMAGE_PULL_TIMEOUT:-300}"

die() { echo "build_base_image: error: $*" >&2; exit 1; }
say() { echo "build_base_image: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --no-host-ca) HOST_CA=0 ;;
    --no-pull) PULL=0 ;;
    --dry-run) DRY_RUN=1 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; TAG="$2"; shift ;;
    --source) [ $# -ge 2 ] || die "--source needs a value"; SOURCE="$2"; shift ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a value"; MIRROR="$2"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
  shift
done

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker daemon answers (is dockerd running, may this user use it?)"

# What an existing image is: the project's stand-in (its label, or the import comment of older
# versions of this script), or anything else (the official image, a mirror's copy).
describe() {
  local label comment
  label=$(docker image inspect --format '{{index .Config.Labels "io.subnet.base-image"}}' "$1" 2>/dev/null || true)
  comment=$(docker image inspect --format '{{.Comment}}' "$1" 2>/dev/null || true)
  if [ "$label" = "stand-in" ] || [[ "$comment" == *"scripts/build_base_image.sh"* ]]; then
    echo "the project's stand-in built from Debian packages, not the official image"
  else
    echo "not built by this script"
  fi
}

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already exists ($(docker image inspect --format '{{.Id}}' "$TAG"); $(describe "$TAG")); use --force to replace it"
  exit 0
fi

OLD_ID=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)

if [ "$PULL" = 1 ]; then
  say "pulling $SOURCE (at most ${PULL_TIMEOUT}s)"
  if PULLED=$(timeout "$PULL_TIMEOUT" docker pull -q "$SOURCE" 2>&1); then
    if [ "$SOURCE" != "$TAG" ]; then
      docker tag "$SOURCE" "$TAG" || die "docker tag $SOURCE $TAG failed"
    fi
    NEW_ID=$(docker image inspect --format '{{.Id}}' "$TAG")
    if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
      docker image rm "$OLD_ID" >/dev/null 2>&1 || true  # the replaced image, unless others build on it
    fi
    say "pulled $SOURCE as $TAG ($NEW_ID): the registry's image, no stand-in built"
    exit 0
  fi
  say "no registry answered for $SOURCE: $(echo "$PULLED" | tail -n 1)"
fi

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: would build a stand-in from Debian $SUITE packages ($MIRROR) and import it as $TAG, labelled $STANDIN_LABEL; nothing built"
  exit 0
fi
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
  --change "LABEL $STANDIN_LABEL" \
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
say "$TAG is the project's stand-in, NOT the official image (label $STANDIN_LABEL); once a registry answers: docker image rm $TAG && $0"
