#!/usr/bin/env bash
# The consult record's PostgreSQL tests (issue 15) need a PostgreSQL server on 127.0.0.1:5432
# that lets the user postgres in without a password; under CI=true they fail without one.
# Installs PostgreSQL from Debian when absent, starts the cluster, and waits until it answers.
# On a machine where that already works (a developer's, the project's), it changes nothing.
set -euo pipefail
answers() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'SELECT version()' 2>/dev/null; }
if answers; then exit 0; fi
if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
# A fresh Debian cluster asks for passwords over TCP: trust loopback (the CI machine is
# throwaway), first in the file so that it wins.
if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
  sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
fi
if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
else
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 30); do
  if answers; then exit 0; fi
  sleep 1
done
echo "PostgreSQL did not start or does not let postgres in on 127.0.0.1:5432" >&2
exit 1
