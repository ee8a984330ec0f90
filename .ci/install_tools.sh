#!/bin/sh
# Debian tools the tests use, installed when missing (CI runs as root):
# fitsverify (FITS standard), chromium (HTML pages), saods9 + xvfb (DS9 region files).
set -e
need=""
command -v fitsverify >/dev/null 2>&1 || need="$need fitsverify"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v ds9 >/dev/null 2>&1 || need="$need saods9"
command -v xvfb-run >/dev/null 2>&1 || need="$need xvfb xauth"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != "0" ]; then
    echo "missing Debian tools:$need (run as root or install them; their tests are skipped)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian tools:$need" >&2
apt-get install -y -q $need >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $need >/dev/null; } || echo "could not install:$need (their tests are skipped)" >&2
