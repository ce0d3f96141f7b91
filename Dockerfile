# syntax=docker/dockerfile:1
#
# Image of the log aggregator. Two stages: `build` compiles TypeScript with the dev dependencies,
# `runtime` holds only the production dependencies and dist/. The image starts exactly what
# `npm start` starts (node dist/main.js), so it runs the same entry point CI tests.
#
#   docker build -t log-aggregator .
#   docker run -p 8080:8080 -v aggregator-data:/data log-aggregator            # embedded PGlite
#   docker run -p 8080:8080 -e DATABASE_URL=… -e REDIS_URL=… log-aggregator    # production backends
#
# docker-compose.yml runs it with PostgreSQL and Redis; docs/operations.md covers production.

# ---- build: dev dependencies, tsc, the SQL migrations copied next to the output ----------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` runs the build, and the sources are not copied yet (copying them
# later keeps this layer cached while only the code changes). Nothing the build uses needs an
# install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and dist/ only, run as the unprivileged `node` user -----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# Same lockfile, production dependencies only; --ignore-scripts because `prepare` would try to
# build without the compiler. The app files stay owned by root: the service cannot rewrite them.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# DATA_DIR holds the embedded PGlite database when DATABASE_URL is unset; mount a volume here.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
# GET /health answers 200 only while the database and the queue both answer. A ROLE=worker
# process serves no HTTP, so there the check only says the process is alive. Node's own fetch:
# the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "if (process.env.ROLE === 'worker') process.exit(0); fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));"]
CMD ["node", "dist/main.js"]
