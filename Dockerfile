# The ailedger image: the log service (`ailedger serve`) and the witness (`ailedger witness serve`).
# Build from the repository root: docker build -t ailedger .
# docs/deploy.md runs it (deploy/compose.yaml); nothing is downloaded at run time: the contracts'
# ABI and bytecode ship inside the package, and the chain is a JSON-RPC URL.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install '.[server]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
# a non-root user; /data is its workspace (one volume per organisation), /public the public
# files it exchanges with the others (verifier keys, addresses)
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home ailedger \
    && mkdir -p /data /public \
    && chown ailedger:ailedger /data /public
USER ailedger
WORKDIR /data
VOLUME ["/data"]
ENV PYTHONUNBUFFERED=1
# 8080: `ailedger serve`; 8081: `ailedger witness serve` (their default ports)
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["ailedger"]
CMD ["--help"]
