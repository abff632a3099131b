#!/usr/bin/env bash
# Installs the Debian packages the test suite uses: smem (compared side by
# side with `pagewalk smem`), chromium (renders the SVG charts), clang-format
# (lint of native/), a C compiler and static libc (fixtures), setpriv (unprivileged runs) and
# prometheus (its `prometheus` scrapes `pagewalk serve` in the tests and its
# `promtool check metrics` checks the exposition; `promtool check rules` and
# `promtool test rules` check deploy/prometheus), and prometheus-node-exporter
# (the machine totals the Grafana dashboard in deploy/grafana shows).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v smem >/dev/null || need+=(smem)
command -v chromium >/dev/null || need+=(chromium)
command -v clang-format >/dev/null || need+=(clang-format)
command -v cc >/dev/null || need+=(gcc)
# libc.a: a statically linked fixture shares no library with smem or pagewalk.
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v setpriv >/dev/null || need+=(util-linux)
command -v strace >/dev/null || need+=(strace)
command -v pgrep >/dev/null || need+=(procps)
command -v script >/dev/null || need+=(bsdutils)
command -v mkswap >/dev/null || need+=(util-linux)
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-machine: need root to install: ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
