const test = require('node:test');
test('part 4 a', () => {});
test('part 4 b', () => {});
