const test = require('node:test');
test('part 5 a', () => {});
test('part 5 b', () => {});
