# One image for every process of the system; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, exactly as pinned, from pyproject.toml and the lock alone: this layer
# is cached while only the code changes, so a code change does not reinstall them.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    && useradd --system --uid 10001 --home-dir /app disputes

# Then the code (the package itself only: its dependencies are in the layer above).
COPY services ./services
COPY shared ./shared
RUN pip install --no-deps -c requirements.lock . \
    && mkdir -p /checkpoints && chown disputes /checkpoints
# /checkpoints: the Merkle log's signed checkpoints (a named volume in compose takes this
# directory's owner, so the notary, running as `disputes`, can write there).

USER disputes
# Listen on every interface inside the container; compose publishes only the gateway.
ENV DISPUTES_HOST=0.0.0.0 \
    DISPUTES_GATEWAY_HOST=0.0.0.0 \
    DISPUTES_LOG_FORMAT=json

EXPOSE 8000 8001 9102 9103 9104 9105
CMD ["python", "-m", "services.gateway"]
