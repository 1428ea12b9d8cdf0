# The trace stream service: one image for `serve`, `migrate` and `demo-data`.
#   docker build -t trace-stream .
#   docker run -p 8000:8000 trace-stream          # the embedded SQLite demo, no server needed
# The first stage builds the wheel (migrations and front end inside it, see setup.py); the
# image installs that wheel with the `server` extra, and holds no source tree.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY svc svc
COPY migrations migrations
COPY frontend frontend
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRACE_DATA_DIR=/data

COPY --from=wheel /dist /dist
RUN whl=$(ls /dist/trace_stream-*.whl) && pip install "${whl}[server]" && rm -rf /dist \
    && useradd --system --uid 10001 --home-dir /data trace \
    && mkdir -p /data && chown trace /data
USER trace
WORKDIR /data

EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["trace-svc", "serve", "--host", "0.0.0.0", "--port", "8000"]
