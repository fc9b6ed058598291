# syntax=docker/dockerfile:1
# The showcase worker for any container host. Build: docker build -t showcase-worker .
# Run: docker run --env-file .env showcase-worker  (see README, "Operate it").

# --- build: compile the TypeScript with the dev dependencies
# Node 24, the newest LTS line (package.json engines: 22.x || 24.x).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and the compiled worker, as a non-root user
FROM node:24-bookworm-slim AS runtime
# Two glibc malloc arenas instead of eight per core: libvips' threads otherwise keep freed
# image memory in arenas of their own; and large blocks always mapped (and so given back when
# freed) instead of glibc raising that threshold to 32 MB as it goes (peak RSS,
# docs/performance.md).
ENV NODE_ENV=production MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# The operator console's browser files (`showcase-worker console`: node dist/cli.js console).
COPY console-ui ./console-ui
# The image's own unprivileged user; the worker writes nothing to disk.
USER node
# Set PORT (e.g. -e PORT=8080 -p 8080:8080) to serve /healthz, /readyz and /metrics.
# node directly (not npm), so SIGTERM reaches the worker and it drains before exiting. V8's
# young generation at 4 MB a semi-space: Node 24 lets it grow to 64 MB, about 110 MB more
# resident memory for no measured CPU gain (docs/performance.md).
CMD ["node", "--max-semi-space-size=4", "dist/main.js"]
