# One image for every process of the system; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached while only the code changes), exactly as pinned.
COPY pyproject.toml requirements.lock ./
COPY services ./services
COPY shared ./shared
RUN pip install -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /app disputes

USER disputes
# Listen on every interface inside the container; compose publishes only the gateway.
ENV DISPUTES_HOST=0.0.0.0 \
    DISPUTES_GATEWAY_HOST=0.0.0.0

EXPOSE 8000 8001
CMD ["python", "-m", "services.gateway"]
