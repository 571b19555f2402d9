import { defineConfig } from "vite";

// The bundle is committed in internal/ui/dist and embedded in the binary,
// so the build must be reproducible: fixed file names (no content hashes,
// the server sets cache headers itself), no source maps, no preload polyfill.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../internal/ui/dist",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    target: "es2022",
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});
