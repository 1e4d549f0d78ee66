// Tests are named by tier: *.unit.spec.ts (pure, no I/O), *.int.spec.ts (real Kafka and
// PostgreSQL), *.e2e.spec.ts (whole system as separate processes).
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2023',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

const moduleNameMapper = {
  '^@cashflow/migrations$': '<rootDir>/migrations',
  '^@cashflow/(.*)$': '<rootDir>/libs/$1/src',
};

const project = (displayName, testMatch, extra = {}) => ({
  displayName,
  testMatch,
  rootDir: __dirname,
  testEnvironment: 'node',
  // jose, uuid and the OpenAPI validator ship as ECMAScript modules only; Node 22+ loads them with require(), Jest
  // does not, so Jest compiles them to CommonJS like our own code.
  transform: {
    '^.+\\.ts$': swc,
    '/node_modules/(jose|uuid|@seriousme/openapi-schema-validator)/.+\\.js$': swc,
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|uuid|@seriousme/openapi-schema-validator)/)'],
  moduleNameMapper,
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.local/', '/.cache/'],
  ...extra,
});

module.exports = {
  projects: [
    project('unit', ['<rootDir>/**/*.unit.spec.ts']),
    project('int', ['<rootDir>/**/*.int.spec.ts'], {
      slowTestThreshold: 30,
      setupFilesAfterEnv: ['<rootDir>/test/support/int-timeouts.setup.ts'],
    }),
    project('e2e', ['<rootDir>/**/*.e2e.spec.ts'], {
      slowTestThreshold: 60,
      setupFilesAfterEnv: ['<rootDir>/test/support/e2e-timeouts.setup.ts'],
      globalSetup: '<rootDir>/test/support/build.global-setup.ts',
    }),
  ],
};
