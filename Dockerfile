# btcmesh: one static binary on an empty base image.
#
# The binary is built on the host (`make build`: statically linked, -trimpath),
# so this file pulls nothing and builds without a registry. Build it with a
# small context holding only what it copies (scripts/image.sh does this):
#
#   make build
#   tar -c Dockerfile bin/btcmesh deploy/docker/rootfs | docker build -t btcmesh:dev -f Dockerfile -
#
# Every service runs from this image with different arguments:
#   docker run btcmesh:dev node                     # all six services, embedded NATS
#   docker run btcmesh:dev headers --nats-url ...   # one service
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="btcmesh" \
      org.opencontainers.image.description="Bitcoin full node as Go microservices (one binary: btcmesh)" \
      org.opencontainers.image.source="https://github.com/btcmesh/btcmesh" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# A non-root user (numeric, so runAsNonRoot can verify it) and a data
# directory it owns; nothing else is writable.
COPY deploy/docker/rootfs/etc/passwd deploy/docker/rootfs/etc/group /etc/
COPY --chown=65532:65532 deploy/docker/rootfs/data/ /data/
COPY bin/btcmesh /btcmesh

# Inside a container the process must listen on the container's interfaces;
# publish ports on the host's 127.0.0.1 only (see compose.yaml).
ENV BTCMESH_DATADIR=/data \
    BTCMESH_GRPC_LISTEN=0.0.0.0:8555 \
    BTCMESH_METRICS_LISTEN=0.0.0.0:9555

USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 8555 gRPC (every API, grpc.health.v1), 9555 /metrics /healthz /readyz,
# 18444 regtest P2P (8333 mainnet, 18333 testnet3, 48333 testnet4, 38333 signet),
# 4222 embedded NATS of `btcmesh node` (bind it with --nats-listen 0.0.0.0:4222).
EXPOSE 8555 9555 18444

# grpc.health.v1 over loopback: SERVING only once the process is ready.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/btcmesh", "healthcheck", "--addr", "127.0.0.1:8555", "--timeout", "4s"]

ENTRYPOINT ["/btcmesh"]
CMD ["node", "--nats-listen", "127.0.0.1:4222"]
