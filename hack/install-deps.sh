#!/usr/bin/env bash
# Installs Prometheus, promtool and Alertmanager from Debian's packages when
# they are missing, and with --node what a real local node runs on
# (containerd with runc, the CNI plugins, iptables). Needs root (or sudo)
# for apt-get.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing+=(prometheus-alertmanager)
if [[ ${1:-} == --node ]]; then
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
	command -v iptables-save >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		echo "install-deps: need root to install: $pkgs (run: apt-get install $pkgs)" >&2
		exit 1
	fi
fi
echo "install-deps: installing $pkgs" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
# The packages start their services under systemd; here they are run by the
# tests and the demo on their own ports, so stop any that came up.
for s in prometheus prometheus-alertmanager prometheus-node-exporter containerd; do
	"${sudo[@]}" service "$s" stop >/dev/null 2>&1 || true
done
