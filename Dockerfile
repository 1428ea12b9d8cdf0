# The trace stream service: one image for `serve`, `migrate` and `demo-data`.
#   docker build -t trace-stream .
#   docker run -p 8000:8000 trace-stream          # the embedded SQLite demo, no server needed
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRACE_DATA_DIR=/data

WORKDIR /app
COPY . .
# An editable install keeps the package in /app, beside migrations/ and frontend/, which
# the service finds relative to its own source. (pyproject.toml names README.md.)
RUN [ -f README.md ] || echo "# trace-stream" > README.md; \
    pip install -e '.[server]' \
    && useradd --system --uid 10001 --home-dir /data trace \
    && mkdir -p /data && chown trace /data
USER trace

EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["trace-svc", "serve", "--host", "0.0.0.0", "--port", "8000"]
