const test = require('node:test');
test('part 8 a', () => {});
test('part 8 b', () => {});
