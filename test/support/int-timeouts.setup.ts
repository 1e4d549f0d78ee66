// Real broker, database and consumer-group joins take seconds; waits inside tests have their own deadlines.
jest.setTimeout(60_000);
