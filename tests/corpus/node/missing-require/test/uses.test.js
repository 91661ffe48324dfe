const test = require('node:test');
const helper = require('./no-such-helper');

test('uses the helper', () => { helper(); });
