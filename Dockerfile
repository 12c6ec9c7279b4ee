# Latchkey: a multi-stage build. The first stage compiles the release binary,
# the second is a small runtime image with only what the binary links to.
#   docker build -t latchkey .
#   docker run -p 8080:8080 -e LATCHKEY_DATABASE__URL=… -e LATCHKEY_SESSIONS__URL=… latchkey

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p latchkey \
 && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/latchkey --create-home latchkey
COPY --from=build /usr/local/bin/latchkey /usr/local/bin/latchkey
COPY config/docker.toml /etc/latchkey/latchkey.toml
ENV LATCHKEY_CONFIG=/etc/latchkey/latchkey.toml \
    LATCHKEY_DATA_DIR=/var/lib/latchkey
USER latchkey
WORKDIR /var/lib/latchkey
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["latchkey"]
CMD ["serve"]
