const test = require('node:test');
test('part 6 a', () => {});
test('part 6 b', () => {});
