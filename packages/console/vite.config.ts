import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Everything the console loads comes from the platform that serves it: no CDN.
export default defineConfig({
  plugins: [react()],
  // absolute: index.html is also the answer for the console's nested paths (/organizations/…/devices)
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
