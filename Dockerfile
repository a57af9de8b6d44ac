# syntax=docker/dockerfile:1
# PAIN service image: CPU-only torch, dependencies in layers of their own, non-root user.
# NOTE: written without a Docker engine at hand, so this file has not been built yet. hadolint
# passes it, and .ci/image_size.py installs the same packages the same way outside Docker.
#
#   docker build -t pain .
#   docker run --rm -p 8080:8080 -v pain-data:/data -e PAIN_SERVER_ADMIN_TOKEN=... pain
#
# docs/deployment.md describes configuration, volumes, the health check and docker-compose.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Keep these equal to the pins in setup.cfg. tests/test_deployment.py checks that they are.
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/pain/bin:$PATH

# annoy is published as source only, so building it needs a C++ compiler. The compiler stays
# in this stage and never reaches the final image. Debian packages are not pinned (DL3008):
# a stable release only gets fixes, and the archive drops the old version of a fixed package.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/pain

# The CPU builds of torch and torchvision, from PyTorch's CPU index, so no CUDA library enters the
# image. The +cpu pins fail the build rather than fall back to another build. This layer changes
# only with these arguments.
# TORCH_UNUSED_FILES (under site-packages/torch) are torch's C++ test programs, its C++ headers
# and protoc (177 MB in torch 2.13.0+cpu). Only building C++ extensions or torch.compile's C++
# code needs them, and PAIN does neither. .ci/image_size.py removes the same files.
ARG TORCH_UNUSED_FILES="test include bin/test_* bin/*Test bin/protoc*"
# The unquoted $TORCH_UNUSED_FILES expands its patterns inside torch's folder, hence the cd.
# hadolint ignore=SC2086,DL3003
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}+cpu" "torchvision==${TORCHVISION_VERSION}+cpu" \
    && (cd /opt/pain/lib/python3.11/site-packages/torch && rm -rf $TORCH_UNUSED_FILES) \
    && printf 'torch==%s+cpu\ntorchvision==%s+cpu\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" \
        > /opt/cpu-constraints.txt

# The rest of install_requires, read from setup.cfg alone, so this layer stays cached while only
# code or docs change. The constraints hold torch and torchvision at the CPU builds: a
# dependency that needs another torch fails the build instead of pulling the CUDA one from PyPI.
# PACKAGE_UNUSED_FILES (under site-packages) are ONNX Runtime's C library for programs in other
# languages (its Python module does not load it), its transformer-optimisation scripts, the test
# models of the onnx package, and OpenCV's Haar cascade files (63 MB in onnxruntime 1.32.0,
# onnx 1.23.2 and OpenCV 4.14). The engine only exports one module with onnx, runs it with
# onnxruntime, and uses no cascade classifier. .ci/image_size.py removes the same files.
ARG PACKAGE_UNUSED_FILES="onnxruntime/capi/libonnxruntime.so* onnxruntime/transformers onnx/backend/test cv2/data"
COPY setup.cfg /src/setup.cfg
# hadolint ignore=SC2086,DL3003
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('/src/setup.cfg'); print(c['options']['install_requires'])" \
        > /opt/requirements.txt \
    && pip install --constraint /opt/cpu-constraints.txt --requirement /opt/requirements.txt \
    && (cd /opt/pain/lib/python3.11/site-packages && rm -rf $PACKAGE_UNUSED_FILES) \
    && python -c "import sys, torch; sys.exit(torch.version.cuda and 'torch is a CUDA build: ' + torch.__version__)" \
    && python -c "import sys; from importlib.metadata import distributions; names = sorted(d.metadata['Name'] for d in distributions() if d.metadata['Name'].lower().startswith(('nvidia-', 'triton', 'cuda-'))); sys.exit(names and 'CUDA packages installed: ' + ', '.join(names))"

# The code last: a code change rebuilds only this layer. --no-deps keeps pip from touching the
# dependencies installed above.
COPY pyproject.toml README.md /src/
COPY model /src/model
COPY workers /src/workers
COPY supervisors /src/supervisors
COPY pain_actors /src/pain_actors
COPY web /src/web
# pip itself is not needed once the environment is complete, and takes 14 MB.
RUN pip install --no-deps /src && pip check && python -m pip uninstall --yes --quiet pip


FROM ${PYTHON_IMAGE}
# tini runs as PID 1: it forwards SIGTERM to `pain serve` and reaps actor processes that were
# killed or orphaned, which a Python PID 1 would leave as zombies.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 pain \
    && useradd --create-home --uid 10001 --gid 10001 pain \
    && mkdir -p /data \
    && chown pain:pain /data

COPY --from=build /opt/pain /opt/pain
COPY config.toml /etc/pain/config.toml
ENV PATH=/opt/pain/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PAIN_STORAGE_DATA_DIR=/data \
    PAIN_SERVER_HOST=0.0.0.0

USER 10001:10001
WORKDIR /home/pain
# Model versions, uploaded images, training checkpoints and the SQLite file (storage.data_dir).
VOLUME ["/data"]
EXPOSE 8080

# /healthz returns 503 until a predictor serves, and urlopen raises on 503, so the container turns
# healthy once it can answer predictions. The start period covers the model load
# (actors.predictor_start_timeout is 120 s). The port follows PAIN_SERVER_PORT, but not a port
# set in a mounted config file.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PAIN_SERVER_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--", "pain", "--config", "/etc/pain/config.toml"]
CMD ["serve"]
