import { minInsyncReplicasFor } from './topic-admin';

describe('minInsyncReplicasFor', () => {
  it('asks for two replicas whenever the topic has two or more, one for a single replica', () => {
    expect([1, 2, 3, 5].map(minInsyncReplicasFor)).toEqual([1, 2, 2, 2]);
  });
});
