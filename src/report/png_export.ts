/**
 * `convnorm report --png DIR`: each figure of a written report as a PNG,
 * screenshotted in headless Chromium (playwright-core driving the system's
 * browser; nothing is downloaded), so that the SVG renders exactly as the
 * report shows it.
 */
import {existsSync} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import {pathToFileURL} from 'node:url';

/** The browser --png uses: CONVNORM_CHROMIUM, else Debian's. */
export function chromiumPath(): string {
  return process.env.CONVNORM_CHROMIUM ?? '/usr/bin/chromium';
}

/** Throws, saying what to install, when there is no browser to draw the PNGs with. */
export function checkChromium(path = chromiumPath()): void {
  if (!existsSync(path)) {
    throw new Error(`--png draws the figures in headless Chromium, and there is none at ${path}: install it ` +
                    '(apt-get install chromium) or name its executable in CONVNORM_CHROMIUM');
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'figure';
}

/**
 * Writes `<dir>/<section>-<title>-<k>.png` for every plot and image of the
 * report at `htmlPath`; returns the paths, in page order.
 */
export async function writeFigurePngs(htmlPath: string, dir: string, options: {chromium?: string} = {}): Promise<string[]> {
  const executablePath = options.chromium ?? chromiumPath();
  checkChromium(executablePath);
  await mkdir(dir, {recursive: true});
  // Loaded here, not at the top: playwright takes seconds to load, and every CLI command imports this module.
  const {chromium} = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath, headless: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const written: string[] = [];
  try {
    const page = await browser.newPage({viewport: {width: 1200, height: 900}, deviceScaleFactor: 2});
    // The report fetches nothing; block the network all the same.
    await page.route('**/*', route => (/^(file|data):/.test(route.request().url()) ? route.continue() : route.abort()));
    await page.goto(pathToFileURL(htmlPath).href);
    const sections = await page.$$('section.figure');
    for (const [i, section] of sections.entries()) {
      const title = slug((await section.$eval('h2', h => h.textContent ?? '')));
      const parts = await section.$$('.plots > figure, .plots > svg, .images > figure');
      for (const [k, part] of parts.entries()) {
        const path = join(dir, `${i + 1}-${title}-${k + 1}.png`);
        await part.screenshot({path});
        written.push(path);
      }
    }
  } finally {
    await browser.close();
  }
  return written;
}
