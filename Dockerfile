# Open Chat on DeltaDB: the chat service, the entity server and the `deltadb` tools in one image.
#
#   docker build -t openchat .
#   docker run --rm openchat deltadb keygen > deltadb_master_key     # once; see README
#
# BASE_IMAGE is any Debian-family image with Python 3.11 and its venv module: the official
# python:3.11-slim (python at /usr/local/bin) or Debian bookworm with python3 and
# python3-venv from apt (python at /usr/bin); PYTHON names the interpreter to build the venv with.
# Nothing here needs BuildKit: the classic builder (DOCKER_BUILDKIT=0) builds it.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PYTHON=python3
# Marks this stage's images, so a local build script can tell its old ones apart.
LABEL org.opencontainers.image.title=open-chat-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_PREFER_BINARY=1
RUN ${PYTHON} -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet --upgrade pip setuptools wheel
# Requirements first, so a code change does not reinstall them.
COPY requirements.txt /app/requirements.txt
RUN /opt/venv/bin/pip install --quiet -r /app/requirements.txt
COPY pyproject.toml /app/
COPY backend /app/backend
COPY deltadb_dialect /app/deltadb_dialect
# Installed in place: the service finds frontend/ and alembic/ beside its package, and the
# `deltadb` command and the deltadb:// entry points come from this install.
RUN /opt/venv/bin/pip install --quiet --no-deps --no-build-isolation -e /app \
 && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools wheel

FROM ${BASE_IMAGE}
ARG UID=10001
# A fixed numeric user, so volumes and secret files can be given to it by number. /data is
# for the store's volume, /keys for a key volume of its own (OPENCHAT_GENERATE_KEY=1): a named
# volume mounted on either takes this owner.
RUN echo "openchat:x:${UID}:${UID}:Open Chat:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
 && echo "openchat:x:${UID}:" >> /etc/group \
 && mkdir -m 0700 /data /keys && chown ${UID}:${UID} /data /keys
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini /app/
COPY alembic /app/alembic
COPY backend /app/backend
COPY deltadb_dialect /app/deltadb_dialect
COPY frontend /app/frontend
COPY docker/entrypoint.py docker/healthcheck.py /app/docker/
# Compiled now: at run time the root filesystem may be read-only.
RUN /opt/venv/bin/python -m compileall -q /app/backend /app/deltadb_dialect /app/alembic /app/docker
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production
WORKDIR /app
USER ${UID}:${UID}
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/opt/venv/bin/python", "/app/docker/entrypoint.py"]
CMD ["openchat"]
