# The service image for docker-compose users. Node 24 LTS runs the TypeScript sources directly.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
# config/ and data/ are written by the service (rules versions, registry edits through the API).
COPY --chown=node:node config ./config
RUN mkdir -p /app/data && chown node:node /app/data
COPY bin ./bin
ENV NODE_ENV=production
# The service needs no privilege: run as the image's unprivileged `node` user (uid 1000), so a
# compromise of the process does not own the container. Code stays root-owned and read-only to it.
USER node
EXPOSE 8080
CMD ["node", "src/main.ts"]
