/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `make web-dev`: the dev server proxies the gateway's routes, as the browser's own origin would
// reach them, so cookies, CSRF and SSE work as in production. The gateway checks Origin on unsafe
// requests: the proxy presents the gateway's own.
const gateway = process.env["ETP_GATEWAY"] ?? "http://127.0.0.1:8000";
const toGateway = {
  target: gateway,
  changeOrigin: true,
  configure(proxy: { on(event: "proxyReq", listener: (request: { setHeader(name: string, value: string): void; removeHeader(name: string): void }) => void): void }) {
    proxy.on("proxyReq", (request) => {
      request.setHeader("Origin", gateway);
      request.removeHeader("Referer");
    });
  },
};

export default defineConfig({
  plugins: [react()],
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    proxy: { "/api": toGateway, "/auth": toGateway },
  },
  build: {
    target: "es2022",
    sourcemap: true,
    // Hashed file names under assets/: the gateway serves them as immutable.
    assetsDir: "assets",
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
