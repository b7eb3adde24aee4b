#!/usr/bin/env bash
# Install the Debian packages that featurekiln's demo and tests need, if missing:
# Java for Spark (the JDK: featurekiln compiles its local file system, see
# featurekiln/internals/NioLocalFileSystem.java), redis-server for the Redis online-store tests, PostgreSQL for the rehearsal of
# the production Airflow stack (tests/orchestration/test_rehearsal.py), Chromium to open
# the data-quality HTML reports headless in the tests.
set -euo pipefail
need=()
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
