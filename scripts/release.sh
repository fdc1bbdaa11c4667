#!/usr/bin/env bash
# make release: tag this commit v<version of pyproject.toml>, the ref `generator ci init` then pins.
# Refuses a dirty tree (the tag would name a commit that is not what was checked) and an existing tag (a
# release is never moved); runs the checks before tagging. GENERATOR names the generator to check with.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
generator=${GENERATOR:-.venv/bin/generator}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
tag="v$version"
if [ -z "$version" ]; then echo "error: pyproject.toml: no version" >&2; exit 2; fi
if [ -n "$(git status --porcelain)" ]; then
  echo "error: the working tree has changes; commit or stash them, then make release" >&2
  exit 1
fi
if git rev-parse --verify --quiet "refs/tags/$tag" >/dev/null; then
  echo "error: tag $tag exists (at $(git rev-parse --short "$tag^{commit}")); raise the version in pyproject.toml and generator/__init__.py" >&2
  exit 1
fi
"$generator" schema --check
"$generator" render --all --check
"$generator" validate --all
git tag -a "$tag" -m "litellm-gitops-generator $version"
echo "tagged $tag at $(git rev-parse --short HEAD); push it: git push origin $tag"
