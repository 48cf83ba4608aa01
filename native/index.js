'use strict';
// The compiled addon; require() throws when `npm ci` could not build it (no BLAS, no compiler).
module.exports = require('./build/Release/healing_native.node');
