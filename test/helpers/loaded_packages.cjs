// Preloaded (node --require) by the CLI tests: prints, as the process exits,
// which of the packages that only some commands need were loaded.
const WATCHED = /node_modules\/(playwright-core|jsdom|bullmq|ioredis)\//;
process.on('exit', () => {
  const names = Object.keys(require.cache).filter(p => WATCHED.test(p)).map(p => p.match(WATCHED)[1]);
  process.stderr.write(`loaded packages: ${[...new Set(names)].sort().join(',')}\n`);
});
