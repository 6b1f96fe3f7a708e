# Interact: the real-time interaction server (see README.md and docs/).
#   docker build -t interact .
#   docker run -p 8080:8080 -e INTERACT_SECRET=... interact     (memory engine, one process)
# With Redis, several processes (docker-compose.yml does this):
#   docker run -p 8080:8080 -e INTERACT_SECRET=... -e INTERACT_REDIS_URL=redis://HOST:6379/0
#       interact serve --host 0.0.0.0 --workers 2
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Every dependency ships manylinux wheels (uvloop, orjson, msgpack, cryptography), so the
# slim image needs no compiler.
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

RUN useradd --system --create-home --home-dir /home/interact --uid 10001 \
        --shell /usr/sbin/nologin interact
USER interact
WORKDIR /home/interact

EXPOSE 8080

# No curl in the slim image: ask /healthz with the standard library. INTERACT_PORT is
# honoured in case the port was moved with the environment.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('INTERACT_PORT', '8080'), timeout=4)"]

# SIGTERM (docker stop) drains: stop accepting, flush, close viewers with 1001, exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["interact"]
CMD ["serve", "--host", "0.0.0.0"]
