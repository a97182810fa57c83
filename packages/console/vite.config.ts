import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Everything the console loads comes from the platform that serves it: no CDN, relative asset paths.
export default defineConfig({
  plugins: [react()],
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
