#!/usr/bin/env bash
# Installs the Debian packages the project needs, when missing. As root it uses apt-get;
# otherwise it prints the package to install and stops.
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [nginx]=nginx-light
  [riscv64-unknown-elf-gcc]=gcc-riscv64-unknown-elf
  [wrk]=wrk
  [chromium]=chromium  # the report tests open the HTML in headless Chromium
  [mmdebstrap]=mmdebstrap          # the container backend's base image (make images)
  [docker-compose]=docker-compose  # validating the lab's Compose file
)

missing=()
for cmd in "${!NEED[@]}"; do
  if [ "$cmd" = nginx ] && [ -x /usr/sbin/nginx ]; then continue; fi
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing system packages: ${missing[*]}" >&2
  echo "       install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "== installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
