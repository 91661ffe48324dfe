const test = require('node:test');
test('before the exit', () => {});
test('calls process.exit', () => {
  process.exit(3);
});
test('never reached', () => {});
