/* SPDX-License-Identifier: Apache-2.0 */
// Builds the static site into dist/: hashed files under dist/assets/ (cached for a year
// by nginx) and an index.html that loads them (never cached). No inline scripts, so the
// Content-Security-Policy can forbid them.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    // `npm run dev` talks to a local api the way nginx does.
    proxy: {
      '/api/ready': { target: 'http://127.0.0.1:8000', rewrite: () => '/ready' },
      '/api/': { target: 'http://127.0.0.1:8000' },
    },
  },
});
