import {readFileSync} from 'node:fs';

import type {ReferenceFixtures} from './fixtures.js';

/** The reference fixtures from disk, for Node (a page fetches the same file). */
export function loadReference(): ReferenceFixtures {
  const url = new URL('../fixtures/convnorm-reference.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as ReferenceFixtures;
}
