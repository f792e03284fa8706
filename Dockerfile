# syntax=docker/dockerfile:1.7
# seedops: one image for every stage (`seedops run <stage>`), the IRT service and the operator
# commands. Targets:
#   runtime (default)  docker build -t ghcr.io/seedtest/seedops:TAG .
#   report             docker build --target report -t ghcr.io/seedtest/seedops:TAG-report .
#                      (adds Quarto and Chromium for the weekly report's PDF)
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: compile TypeScript with the dev dependencies ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies only ------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SEEDOPS_HOME=/tmp/seedops \
    NO_UPDATE_NOTIFIER=1
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/oclif.manifest.json ./
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root k8s ./k8s
COPY --chown=root:root reports ./reports
# `seedops` on the PATH runs bin/run.js (oclif reads the commands from ./dist/src/commands).
RUN ln -s /app/bin/run.js /usr/local/bin/seedops && chmod 0755 /app/bin/run.js \
 && groupadd --system --gid 10001 seedops \
 && useradd --system --uid 10001 --gid seedops --home-dir /tmp/seedops --shell /usr/sbin/nologin seedops
# Numeric, so runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["seedops"]
CMD ["--help"]

# --- report: Quarto + Chromium for PDF ---------------------------------------------------------
FROM runtime AS report
ARG QUARTO_VERSION=1.6.42
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl chromium fonts-dejavu-core \
 && curl -fsSL -o /tmp/quarto.deb "https://github.com/quarto-dev/quarto-cli/releases/download/v${QUARTO_VERSION}/quarto-${QUARTO_VERSION}-linux-amd64.deb" \
 && apt-get install -y --no-install-recommends /tmp/quarto.deb \
 && rm -f /tmp/quarto.deb \
 && apt-get purge -y curl && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
ENV QUARTO_PATH=/usr/local/bin/quarto \
    CHROMIUM_PATH=/usr/bin/chromium \
    PUPPETEER_EXECUTABLE_PATH=/usr/bin/chromium
USER 10001:10001
ENTRYPOINT ["seedops"]
CMD ["--help"]
