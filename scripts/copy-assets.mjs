// Copies the non-TypeScript files the service reads at run time next to the build: the SQL
// migrations and the dashboard page (served at /).
import { cpSync } from 'node:fs';

cpSync('src/store/migrations', 'dist/store/migrations', { recursive: true });
cpSync('src/dashboard', 'dist/dashboard', { recursive: true });
