# Stand-ins for the official redis:7.4 and postgres:16 images, for machines that cannot pull from a registry
# (the development machines): Debian bookworm's own Redis 7.0 and PostgreSQL 15 on the local base that
# scripts/docker_local_base.sh makes. They accept what docker/compose.yaml gives the official images
# (redis-server's arguments and /data; POSTGRES_USER / _PASSWORD / _DB, the data folder, pg_isready), and
# only `make deploy-check` uses them, through docker/compose.check.yaml. Production uses the official images.
ARG BASE_IMAGE=rollcall/bookworm-python:local

FROM ${BASE_IMAGE} AS redis
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
CMD ["redis-server"]

FROM ${BASE_IMAGE} AS postgres
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY docker/standin-postgres.sh /usr/local/bin/standin-postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["standin-postgres"]
