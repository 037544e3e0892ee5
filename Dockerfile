# The service image for docker-compose users. Node 24 LTS runs the TypeScript sources directly.
FROM node:24-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY config ./config
COPY bin ./bin
ENV NODE_ENV=production
EXPOSE 8080
CMD ["node", "src/main.ts"]
