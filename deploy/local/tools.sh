#!/usr/bin/env bash
# Tools the tests use to check the deployment offline: kustomize (built from the Go module proxy into
# $GRIDLINK_HOME/bin), and promtool and the Prometheus server (Debian's prometheus package: the alert
# rules' unit tests, and the dashboards test that scrapes the running services). Idempotent; cached
# per user. Usage: tools.sh install   then: tools.sh path kustomize|promtool|prometheus  prints its path
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
: "${GRIDLINK_KUSTOMIZE_VERSION:=v5.7.1}"

say() { echo "[tools] $*"; }
die() { echo "[tools] error: $*" >&2; exit 1; }
bin="$GRIDLINK_HOME/bin"
kustomize="$bin/kustomize-$GRIDLINK_KUSTOMIZE_VERSION"
mkdir -p "$bin"

kustomize_install() {
  [ -x "$kustomize" ] && { say "kustomize $GRIDLINK_KUSTOMIZE_VERSION cached at $kustomize"; return; }
  command -v go >/dev/null || die "Go is needed to build kustomize (the Go module proxy serves it)"
  say "building kustomize $GRIDLINK_KUSTOMIZE_VERSION"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" GOMODCACHE="$GRIDLINK_HOME/go/mod" GOCACHE="$GRIDLINK_HOME/go/build" \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$GRIDLINK_KUSTOMIZE_VERSION"
  mv "$tmp/kustomize" "$kustomize"
  rm -rf "$tmp"
}

promtool_install() {
  command -v promtool >/dev/null && command -v prometheus >/dev/null \
    && { say "promtool: $(command -v promtool), prometheus: $(command -v prometheus)"; return; }
  command -v apt-get >/dev/null || die "promtool comes from Debian's prometheus package; apt-get is missing"
  say "installing Debian's prometheus package (promtool and the server)"
  [ "$(id -u)" = 0 ] || die "installing prometheus needs root (apt-get install prometheus)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
    || die "apt could not install prometheus"
}

locked() { local name=$1; shift; ( flock 9; "$@" ) 9>"$GRIDLINK_HOME/.$name.lock"; }

case "${1:-install}" in
  install) locked kustomize kustomize_install; locked promtool promtool_install ;;
  path)
    case "${2:-}" in
      kustomize) echo "$kustomize" ;;
      promtool) command -v promtool ;;
      prometheus) command -v prometheus ;;
      *) die "path kustomize|promtool|prometheus" ;;
    esac ;;
  *) die "usage: tools.sh install | path kustomize|promtool|prometheus" ;;
esac
