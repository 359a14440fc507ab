/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { "^.+\\.tsx?$": "ts-jest" },
  // Synthesizing the stack takes a few seconds on a small machine.
  testTimeout: 120000,
};
