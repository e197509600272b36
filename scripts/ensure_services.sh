#!/usr/bin/env bash
# Make sure what `make test` needs answers on this machine: PostgreSQL and Redis on
# 127.0.0.1, and Debian's Chromium for the browser tests. Starts what is installed
# and stopped; installs from Debian's packages what is missing (needs root).
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_isready >/dev/null; then
  echo "installing PostgreSQL from Debian packages"
  apt_install postgresql postgresql-contrib
fi
if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version"
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
pg_up || { echo "PostgreSQL does not answer on $PGHOST:$PGPORT" >&2; exit 1; }

# The test role connects over TCP without a password and needs CREATEDB.
if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -tAc "select 1" >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
  echo "allowing trust auth on 127.0.0.1 in $hba"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root su postgres -c "psql -tAc 'select pg_reload_conf()'" >/dev/null
fi

if ! command -v redis-server >/dev/null; then
  echo "installing Redis from Debian packages"
  apt_install redis-server
fi
if ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/shokti-redis.log
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
fi
redis_up || { echo "Redis does not answer on 127.0.0.1:$REDIS_PORT" >&2; exit 1; }

if ! command -v promtool >/dev/null; then
  echo "installing Prometheus from Debian packages (promtool checks ops/prometheus in the tests)"
  apt_install --no-install-recommends prometheus
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium from Debian packages (browser tests)"
  apt_install chromium
fi
# A Bengali font (65 kB), so the browser tests' screenshots show the Bengali texts, not boxes.
if ! fc-list :lang=bn 2>/dev/null | grep -q .; then
  echo "installing a Bengali font from Debian packages (browser screenshots)"
  apt_install fonts-lohit-beng-bengali
fi
echo "services ready: PostgreSQL $PGHOST:$PGPORT, Redis 127.0.0.1:$REDIS_PORT, /usr/bin/chromium"
