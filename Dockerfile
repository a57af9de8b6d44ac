# PAIN service image: CPU-only torch, dependencies in their own cached layer, non-root user.
# NOTE: written without a Docker engine at hand, so this file has not been built yet.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pain
ENV PATH=/opt/pain/bin:$PATH

# CPU wheels of torch first, from PyTorch's CPU index, so no CUDA libraries enter the image.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1

# The rest of the dependencies, in a layer that only changes with setup.cfg.
COPY setup.cfg pyproject.toml README.md /src/
RUN mkdir -p /src/model && touch /src/model/__init__.py \
    && pip install /src && pip uninstall -y pain

COPY model /src/model
COPY workers /src/workers
COPY supervisors /src/supervisors
COPY pain_actors /src/pain_actors
COPY web /src/web
RUN pip install --no-deps /src

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 pain \
    && mkdir -p /data && chown pain /data
COPY --from=build /opt/pain /opt/pain
COPY config.toml /etc/pain/config.toml
ENV PATH=/opt/pain/bin:$PATH \
    PAIN_STORAGE_DATA_DIR=/data \
    PAIN_SERVER_HOST=0.0.0.0
USER pain
WORKDIR /home/pain
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["pain", "--config", "/etc/pain/config.toml", "serve"]
