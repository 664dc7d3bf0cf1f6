import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Preact's JSX runtime through Vite's own transform: no Babel preset needed for a few pages.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/portal', import.meta.url)),
    emptyOutDir: true,
    // One small bundle; source maps stay out of what the server ships.
    sourcemap: false,
  },
});
