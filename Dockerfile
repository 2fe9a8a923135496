# DICE Studio: the clinician dashboard in a container.
#
#   docker build -t dice-studio .                                  # CPU (default)
#   docker build -t dice-studio:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#   docker run --rm -p 8501:8501 -v "$PWD/studio-data:/data" dice-studio
#   then open http://localhost:8501
#
# Runs and saved models live in /data (mount a folder to keep them). Inside the container the
# server listens on all interfaces so that `-p` can publish it; `-p 127.0.0.1:8501:8501` keeps it
# reachable from this computer only. GPU: run the CUDA image with `--gpus all`.
FROM python:3.11-slim

# torch's CPU wheels by default; a CUDA index (see above) builds the GPU image.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DICE_RUNS_DIR=/data/runs \
    DICE_MODELS_DIR=/data/models \
    NUMBA_CACHE_DIR=/tmp/numba

WORKDIR /app
COPY requirements.txt .
# requirements.txt also installs the project itself (`-e .`): that comes after the code is copied.
RUN grep -v '^-e ' requirements.txt > /tmp/requirements.txt \
    && pip install --extra-index-url "$TORCH_INDEX" -r /tmp/requirements.txt

COPY pyproject.toml README.md ./
COPY dice_core ./dice_core
COPY dashboard ./dashboard
COPY assets ./assets
COPY .streamlit ./.streamlit
RUN pip install --no-deps . \
    && useradd --create-home --uid 1000 studio \
    && mkdir -p /data && chown studio /data
USER studio
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["streamlit", "run", "dashboard/app.py", "--server.address=0.0.0.0", "--server.port=8501"]
