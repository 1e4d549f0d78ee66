// Whole processes start and stop in these tests; waits inside tests have their own deadlines.
jest.setTimeout(120_000);
