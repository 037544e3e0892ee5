/**
 * Vitest global setup of both projects: builds the web app (esbuild, about a second) so that
 * /ui answers in every test run, whether or not `npm run build:ui` ran before.
 */
import { buildUi } from '../../scripts/build-ui.ts';

export default async function setup(): Promise<void> {
  await buildUi();
}
