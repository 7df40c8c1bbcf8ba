/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The panel (web/) is built into dist/web and served by Tandem at /panel/, the URL HighLevel frames.
export default defineConfig({
  root: 'web',
  base: '/panel/',
  plugins: [svelte()],
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
  },
  test: {
    root: '.',
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
