#!/usr/bin/env bash
# Builds (or reuses) the control plane of the cluster tests, every part pinned in scripts/versions.env:
#   kube-apiserver, kube-controller-manager, kube-scheduler  tests/cluster/modules/kubernetes
#   Flux source-controller, kustomize-controller              tests/cluster/modules/flux-{source,kustomize}
#   Argo CD application-controller, repo-server (argocd)      tests/cluster/modules/argocd (Go 1.27.4, from the proxy)
#   sealed-secrets controller, KWOK                           go install <module>@<pin>
#   etcd                                                      Debian's etcd-server (installed when missing)
#   Redis (Argo CD's cache)                                   Debian's valkey-server or redis-server (likewise)
# Binaries are cached under ${GENERATOR_CACHE:-~/.cache/litellm-gitops}/cluster/<name>-<pin>, keyed by the
# version and the wrapper module's go.sum, and linked into .tools/cluster/. A cold build is about 47
# CPU-minutes and 13-14 GB of Go caches (kept in the cache, outside the clone); a warm run only links.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=versions.env
source scripts/versions.env

cache=${GENERATOR_CACHE:-$HOME/.cache/litellm-gitops}
out="$cache/cluster"
mkdir -p "$out" .tools/cluster
export GOPATH="$cache/go" GOCACHE="$cache/go-build" GOFLAGS="-modcacherw -mod=readonly" GOTOOLCHAIN=local CGO_ENABLED=0
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "go is required to build the control plane (https://go.dev/doc/install)" >&2; exit 1; }

step() { printf '==> %s\n' "$*"; }
timed() {  # timed LABEL CMD...: runs CMD and prints its wall and CPU seconds (the figures the README quotes)
  local label=$1; shift
  local TIMEFORMAT="    $label: %R s wall, %U s user + %S s system"
  time "$@"
}
link() { ln -sfn "$1" ".tools/cluster/$2"; }

# --- etcd (Debian) ------------------------------------------------------------
if ! command -v etcd >/dev/null; then
  step "apt-get install etcd-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  # Debian's package may start a system etcd on the default ports; the tests run their own.
  systemctl disable --now etcd >/dev/null 2>&1 || true
  pkill -x etcd 2>/dev/null || true
fi
link "$(command -v etcd)" etcd

# --- Redis for Argo CD (Debian's valkey-server, or redis-server where apt has no valkey) -----------
# scripts/install-servers.sh installs it too; make cluster alone does not run that script.
if ! command -v valkey-server >/dev/null && ! command -v redis-server >/dev/null; then
  step "apt-get install valkey-server (or redis-server)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  kv_pkg=valkey-server
  case "$(apt-cache policy valkey-server 2>/dev/null | awk '/Candidate:/{print $2}')" in ""|"(none)") kv_pkg=redis-server ;; esac
  apt-get install -y -qq --no-install-recommends "$kv_pkg" >/dev/null
  systemctl disable --now "$kv_pkg" >/dev/null 2>&1 || true  # the tests run their own, on a free port
fi

# --- wrapper modules: one go build per module, keyed by its pin and go.sum ---
module_build() {  # module_build DIR VERSION NAME=PACKAGE...
  local dir=$1 version=$2; shift 2
  local key; key=$(cat "tests/cluster/modules/$dir/go.mod" "tests/cluster/modules/$dir/go.sum" | sha256sum | cut -c1-12)
  local missing=() pkgs=() spec name i
  for spec in "$@"; do
    name=${spec%%=*}
    [ -x "$out/$name-$version-$key" ] || { missing+=("$name"); pkgs+=("${spec#*=}"); }
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "go build ${missing[*]} ($dir, $version)"
    local tmp; tmp=$(mktemp -d "$out/.build.XXXXXX")
    # shellcheck disable=SC2086  # NICE: an optional command prefix
    ( cd "tests/cluster/modules/$dir" && timed "${missing[*]}" ${NICE:-} go build -trimpath -ldflags "-s -w ${LDFLAGS_EXTRA:-}" -o "$tmp/" "${pkgs[@]}" )
    for i in "${!missing[@]}"; do mv "$tmp/$(basename "${pkgs[$i]}")" "$out/${missing[$i]}-$version-$key"; done
    rmdir "$tmp"
  fi
  for spec in "$@"; do name=${spec%%=*}; link "$out/$name-$version-$key" "$name"; done
}

minor=${CLUSTER_KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
pinned=$(cd tests/cluster/modules/kubernetes && go list -m -f '{{.Version}}' k8s.io/kubernetes)
[ "$pinned" = "$CLUSTER_KUBERNETES_VERSION" ] ||
  { echo "tests/cluster/modules/kubernetes/go.mod does not pin k8s.io/kubernetes $CLUSTER_KUBERNETES_VERSION (scripts/versions.env)" >&2; exit 1; }
LDFLAGS_EXTRA="-X k8s.io/component-base/version.gitVersion=$CLUSTER_KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
  module_build kubernetes "$CLUSTER_KUBERNETES_VERSION" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler
module_build flux-source "$FLUX_SOURCE_CONTROLLER_VERSION" source-controller=github.com/fluxcd/source-controller
module_build flux-kustomize "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" kustomize-controller=github.com/fluxcd/kustomize-controller
# Argo CD: one multicall binary; cmd/main.go runs the component it is started as (argocd-application-controller,
# argocd-repo-server: the links below). Its go.mod needs Go >= 1.27, a toolchain the module proxy serves. About
# 11 CPU-minutes and 2.4 GB of peak memory cold: niced, one package at a time, so the machine stays usable.
argo_mod=github.com/argoproj/argo-cd/v3
GOTOOLCHAIN=$ARGO_CD_GO_TOOLCHAIN GOMAXPROCS=1 GOFLAGS="$GOFLAGS -p=1" NICE="nice -n 19" \
LDFLAGS_EXTRA="-X $argo_mod/common.version=${ARGO_CD_VERSION#v} -X $argo_mod/common.gitTag=$ARGO_CD_VERSION -X $argo_mod/common.gitTreeState=clean" \
  module_build argocd "$ARGO_CD_VERSION" argocd="$argo_mod/cmd"
pinned=$(cd tests/cluster/modules/argocd && GOTOOLCHAIN=$ARGO_CD_GO_TOOLCHAIN go list -m -f '{{.Version}}' "$argo_mod")
[ "$pinned" = "$ARGO_CD_VERSION" ] ||
  { echo "tests/cluster/modules/argocd/go.mod does not pin $argo_mod $ARGO_CD_VERSION (scripts/versions.env)" >&2; exit 1; }
for name in argocd-application-controller argocd-repo-server; do link argocd "$name"; done

# --- go install <module>@<pin> (no replace lines) ----------------------------
go_install() {  # go_install NAME PACKAGE VERSION [LDFLAGS]
  local name=$1 pkg=$2 version=$3 built="$out/$1-$3"
  if [ ! -x "$built" ]; then
    step "go install $pkg@$version"
    local tmp; tmp=$(mktemp -d "$out/.install.XXXXXX")
    GOFLAGS=-modcacherw GOBIN="$tmp" timed "$name" go install -trimpath -ldflags "-s -w ${4:-}" "$pkg@$version"
    mv "$tmp/$(basename "$pkg")" "$built"
    rmdir "$tmp"
  fi
  link "$built" "$name"
}
go_install sealed-secrets-controller github.com/bitnami-labs/sealed-secrets/cmd/controller "$SEALED_SECRETS_CONTROLLER_VERSION" \
  "-X main.VERSION=$SEALED_SECRETS_CONTROLLER_VERSION"
go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"

# --- the CRDs the control plane serves, from the same pinned modules -----------
module_dir() { GOFLAGS=-modcacherw go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }
src=$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION")
kus=$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")
gw=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
argo=$(GOTOOLCHAIN=$ARGO_CD_GO_TOOLCHAIN module_dir "github.com/argoproj/argo-cd/v3@$ARGO_CD_VERSION")
ss=$(module_dir "github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_CONTROLLER_VERSION")
po=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
rm -rf .tools/cluster/crds && mkdir -p .tools/cluster/crds
# source-controller refuses to start unless every source.toolkit.fluxcd.io kind is served
cp "$src"/config/crd/bases/*.yaml "$kus"/config/crd/bases/*.yaml "$gw"/config/crd/standard/*.yaml \
   "$argo"/manifests/crds/application-crd.yaml "$argo"/manifests/crds/appproject-crd.yaml \
   "$ss"/helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml \
   "$po"/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml .tools/cluster/crds/
chmod -R u+w .tools/cluster/crds
rm -f .tools/cluster/crds/kustomization.yaml

# What Argo CD's image adds around the binary: its settings objects (argocd-cm, argocd-secret, ..., which the
# controllers read from the argocd namespace) and the helpers the repo-server execs from /usr/local/bin
# (git-verify-wrapper.sh on every manifest generation, GPG or not). Module zips drop the exec bit.
rm -rf .tools/cluster/argocd-files && mkdir -p .tools/cluster/argocd-files/config .tools/cluster/argocd-files/bin
cp "$argo"/manifests/base/config/argocd-*.yaml .tools/cluster/argocd-files/config/
install -m 0755 "$argo"/hack/git-verify-wrapper.sh "$argo"/hack/gpg-wrapper.sh .tools/cluster/argocd-files/bin/
chmod -R u+w .tools/cluster/argocd-files

# KWOK's own "fast" stages (node ready + lease heartbeat; pods Running and Ready, Job pods Succeeded)
kwok_dir=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
.venv/bin/kubectl kustomize "$kwok_dir/kustomize/stage/fast" > .tools/cluster/kwok-stages.yaml

step "Control plane binaries in .tools/cluster"
for b in .tools/cluster/*; do [ -L "$b" ] || continue; printf '    %-26s %s\n' "$(basename "$b")" "$(readlink "$b")"; done
