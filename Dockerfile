# One image for every process of the Procfile (web, worker, delivery, beat, ...) and for the
# simulator in development; compose.yaml picks the process with `command:`.
#
#   docker build -t pixazo-orchestrator .
#   docker run -e REDIS_URL=... -e PIXAZO_API_KEY=... -e PUBLIC_BASE_URL=https://... \
#     -e ORCHESTRATOR_SECRET_KEY=... -p 8000:8000 pixazo-orchestrator            # web
#   docker run ... pixazo-orchestrator "celery -A workers.entry worker ..."     # any Procfile line
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000

WORKDIR /app

# The package (with its Lua scripts, console templates and the simulator's media) is installed
# as a wheel: the image runs no source checkout and writes nothing into site-packages later.
COPY setup.cfg pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY webhooks ./webhooks
COPY workers ./workers
COPY ops ./ops
COPY devtools ./devtools
RUN pip install . && rm -rf /app/*

# Never root: a fixed uid so that volumes and Kubernetes' runAsNonRoot can rely on it.
RUN groupadd --system --gid 10001 orchestrator \
    && useradd --system --uid 10001 --gid orchestrator --home-dir /app --shell /usr/sbin/nologin orchestrator \
    && chown orchestrator:orchestrator /app
USER 10001:10001

EXPOSE 8000

# The command is one Procfile line, run as a Procfile runner runs it: through the shell, so
# that $PORT and ${WORKER_CONCURRENCY:-4} expand from the container's environment, and with
# `exec`, so the process itself (not a shell) gets docker stop's SIGTERM (Celery's warm
# shutdown, gunicorn's graceful stop).
ENTRYPOINT ["/bin/sh", "-c", "eval \"exec $*\"", "procfile"]

# The Procfile's web line.
CMD ["gunicorn -b 0.0.0.0:$PORT -w ${WEB_CONCURRENCY:-2} --threads 8 orchestrator.wsgi:app"]
