const test = require('node:test');
test('part 2 a', () => {});
test('part 2 b', () => {});
