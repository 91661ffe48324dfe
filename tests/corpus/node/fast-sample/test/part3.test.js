const test = require('node:test');
test('part 3 a', () => {});
test('part 3 b', () => {});
