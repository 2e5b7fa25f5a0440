import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { environment: 'node', include: ['tests/**/*.test.{js,jsx}'] },
  esbuild: { jsx: 'automatic' },
});
