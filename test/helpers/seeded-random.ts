// the hub's own generator, so a test's "random" input is the same for the same seed
export { seededRandom } from '../../src/evaluation/seeded-random.ts';
