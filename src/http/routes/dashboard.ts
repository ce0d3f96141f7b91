/**
 * GET /: the dashboard, and GET /explore: the explorer, static pages whose script reads the JSON API like any other client
 * (so it needs a read key exactly when the API does). Its files sit next to this module's output
 * (`src/dashboard` from source, `dist/dashboard` once built), and the uPlot chart library is
 * served from its installed package, so nothing is loaded from another origin and the page works
 * under the server's `default-src 'self'` policy. None of these routes is in the API description.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const PAGE_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js'));
const UPLOT_FILES = new Set(['/uPlot.esm.js', '/uPlot.min.css']);

export function registerDashboardRoutes(app: FastifyInstance): void {
  // Encapsulated: `reply.sendFile` stays this plugin's, whatever else serves static files.
  void app.register(async (scope) => {
    await scope.register(fastifyStatic, {
      root: PAGE_DIR,
      prefix: '/dashboard/',
      index: false,
      schemaHide: true,
    });
    await scope.register(fastifyStatic, {
      root: UPLOT_DIR,
      prefix: '/dashboard/vendor/',
      decorateReply: false,
      index: false,
      schemaHide: true,
      allowedPath: (path) => UPLOT_FILES.has(path),
    });
    scope.get('/', { schema: { hide: true } }, (_request, reply) =>
      reply.sendFile('index.html', { maxAge: 0 }),
    );
    // The explorer: search, histogram and results of stored events (explore.html).
    scope.get('/explore', { schema: { hide: true } }, (_request, reply) =>
      reply.sendFile('explore.html', { maxAge: 0 }),
    );
    // The asset folder itself is no page (the static server would refuse it as a directory).
    // Relative targets, like every URL of the page, so a proxy may serve it under a path.
    const toPage = { '/dashboard': './', '/dashboard/': '../' };
    for (const [url, target] of Object.entries(toPage)) {
      scope.get(url, { schema: { hide: true } }, (_request, reply) => reply.redirect(target));
    }
  });
}
