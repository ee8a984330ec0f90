#!/bin/sh
# Debian tools the tests use, installed when missing (CI runs as root).
set -e
need=""
command -v fitsverify >/dev/null 2>&1 || need="$need fitsverify"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != "0" ]; then
    echo "missing Debian tools:$need (run as root or install them)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $need >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $need >/dev/null; }
