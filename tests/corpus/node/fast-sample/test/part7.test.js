const test = require('node:test');
test('part 7 a', () => {});
test('part 7 b', () => {});
