const test = require('node:test');
test('quick', () => {});
test('never ends', () => new Promise(() => { setInterval(() => {}, 1000); }));
test('after', () => {});
