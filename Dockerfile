# poolwatchd image: built with the same dependency script and CMake preset as CI.
#   docker build --network host --build-arg REVISION=$(git rev-parse --short=12 HEAD) \
#     -t poolwatchd .
#   docker run --read-only -p 9720:9720 poolwatchd
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/runtime-packages.sh scripts/
RUN scripts/install-deps.sh build
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY lib lib
COPY exporter exporter
COPY daemon daemon
COPY examples examples
# .git is not in the build context: the revision poolwatch_build_info reports is given.
ARG REVISION=unknown
RUN cmake --preset release -DPOOLWATCH_REVISION="${REVISION}" \
 && cmake --build --preset release --target poolwatchd \
 && strip --strip-debug build/release/daemon/poolwatchd \
 && scripts/runtime-packages.sh build/release/daemon/poolwatchd > /runtime-packages.txt

FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="poolwatchd" \
      org.opencontainers.image.description="Buffer-pool memory observability for frame-based runtimes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/poolwatch/poolwatch" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends < /tmp/runtime-packages.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /src/build/release/daemon/poolwatchd /usr/local/bin/poolwatchd
COPY config/poolwatchd.json /etc/poolwatchd/poolwatchd.json
# Writes nothing: runs with a read-only root filesystem and no tmpfs.
USER 65532:65532
EXPOSE 9720
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=4s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/poolwatchd", "--config", "/etc/poolwatchd/poolwatchd.json", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/poolwatchd"]
CMD ["--config", "/etc/poolwatchd/poolwatchd.json"]
