# The validator's own image. Build: docker build -t subnet-validator .
# Run:  docker run --rm -v ~/.bittensor:/home/validator/.bittensor:ro -v subnet-state:/home/validator/.subnet \
#         -v /var/run/docker.sock:/var/run/docker.sock subnet-validator validator run --network finney ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/subnet

COPY pyproject.toml README.md ./
COPY subnet ./subnet
COPY envs ./envs
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 validator

USER validator
WORKDIR /home/validator
ENTRYPOINT ["subnet"]
CMD ["--help"]
