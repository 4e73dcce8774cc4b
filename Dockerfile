# syntax=docker/dockerfile:1
# Natter's image: build with the full toolchain, ship only Nitro's self-contained .output.
# The Node minor is pinned (both stages) so a rebuild does not silently move the runtime; bump
# it on purpose, together with CI's node-version and the `node` dev dependency in package.json.

FROM node:24.21-slim AS build
WORKDIR /app
# Dependencies first, so a source-only change reuses this layer. --ignore-scripts because the
# package's postinstall (Node check, `nuxt prepare`) needs the sources that are not copied yet;
# `nuxt build` below prepares by itself. It also skips the `node` dev dependency's download: this
# image's Node runs everything.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Nitro fixes scheduled tasks at build time: the purge schedule is a build argument, not runtime env.
ARG NATTER_RETENTION_CRON="0 * * * *"
ENV NATTER_RETENTION_CRON=$NATTER_RETENTION_CRON
RUN npx nuxt build

FROM node:24.21-slim AS runtime
# --max-semi-space-size=16: V8 otherwise lets the young generation grow to 64 MB semi-spaces
# (~100 MB resident) while sockets open, since each open keeps its async work alive across
# scavenges; 16 MB (V8's former default) keeps it at ~32 MB (docs/performance.md, idle connections).
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
# The bundle stays root-owned (the app cannot rewrite itself); only .data is the app's, for the
# embedded fallbacks when no DATABASE_URL is given (plain `docker run`). A plain `docker run` still
# needs SMTP_URL, or NATTER_DEV_MAIL=1 to print sign-in codes to the log on a machine only you
# can reach: production refuses to start with neither. Give the container room for connections
# (`--ulimit nofile=65536:65536`; docker-compose.yml does): see docs/security.md.
COPY --from=build /app/.output ./.output
RUN mkdir -p .data && chown node:node .data
USER node
EXPOSE 3000
# slim has no curl: Node's own fetch asks the liveness endpoint.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and gets SIGTERM directly: Nitro's shutdown hook drains sockets (see docs/deploy.md).
CMD ["node", ".output/server/index.mjs"]
