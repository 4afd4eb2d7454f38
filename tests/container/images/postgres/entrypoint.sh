#!/bin/sh
# Started as root, as the official image is: the password secret keeps its host owner, so it
# is read here, then the server runs as postgres. A new data directory gets initdb with the
# user and password given, then its database.
set -eu
if [ "$(id -u)" = 0 ]; then
    install -o postgres -g postgres -m 0600 "$POSTGRES_PASSWORD_FILE" /tmp/initial-password
    chown postgres:postgres "$PGDATA" && chmod 0700 "$PGDATA"
    export POSTGRES_PASSWORD_FILE=/tmp/initial-password
    exec setpriv --reuid=postgres --regid=postgres --init-groups sh "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
rm -f /tmp/initial-password
exec postgres -D "$PGDATA" -c listen_addresses='*'
