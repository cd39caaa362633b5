# The validator's own image.
#   docker build --network host -t subnet-validator .
# tini (Debian's package) is PID 1: it forwards SIGTERM/SIGINT to the validator and reaps
# zombies, so `docker stop` is a clean stop and no child process is left defunct.
# Runs in Docker mode with the host's socket mounted, or in Basilica mode with a token; see README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SUBNET_HOME=/home/validator/.subnet
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/subnet
COPY pyproject.toml README.md ./
COPY subnet ./subnet
COPY envs ./envs
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 validator

USER validator
WORKDIR /home/validator
ENTRYPOINT ["/usr/bin/tini", "--", "subnet"]
CMD ["--help"]
