#!/usr/bin/env bash
# Installs the Debian packages MuxRPC's demo and tests need, when missing:
#   pkg-config, libmsgpack-dev    msgpack-c, the reference the codec tests compare against
#   openssl                       makes the certificates the TLS tests use
#   golang-go + hashicorp sources the real Go peers the interop tests run against
# Needs root (or sudo). Does nothing when everything is already installed.
set -euo pipefail

packages=(
    pkg-config
    libmsgpack-dev
    openssl
    golang-go
    golang-github-hashicorp-yamux-dev
    golang-github-hashicorp-net-rpc-msgpackrpc-dev
    golang-github-hashicorp-go-msgpack-dev
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "==> system packages: all present (${packages[*]})"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "error: need root to install: ${missing[*]}" >&2
        exit 1
    fi
fi
echo "==> installing system packages with apt-get: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
