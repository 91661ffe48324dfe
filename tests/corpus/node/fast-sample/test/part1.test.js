const test = require('node:test');
test('part 1 a', () => {});
test('part 1 b', () => {});
