const test = require('node:test');

test('never defined', () => {
  const x = {;
});
