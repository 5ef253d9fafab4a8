/**
 * Container names: Docker's validation rule and a random `adjective_surname` generator. The
 * word lists are strata's own (Docker's are not copied); like Docker, a generated name that
 * is taken gets a numeric suffix on retry.
 */
import { randomInt } from 'node:crypto';

import { InvalidArgumentError } from '../errors.js';

const VALID_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Strips the leading `/` Docker stores names with; throws Docker's message for a bad one. */
export function validateName(name: string): string {
  if (!VALID_NAME.test(name)) {
    throw new InvalidArgumentError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name.startsWith('/') ? name.slice(1) : name;
}

const ADJECTIVES = [
  'agile', 'amber', 'ancient', 'atomic', 'bold', 'brave', 'bright', 'calm', 'candid', 'clever',
  'cosmic', 'crisp', 'curious', 'daring', 'deft', 'eager', 'earnest', 'elegant', 'fearless', 'fluent',
  'frugal', 'gentle', 'glad', 'golden', 'humble', 'jolly', 'keen', 'kind', 'lively', 'lucid',
  'mellow', 'merry', 'modest', 'nimble', 'noble', 'patient', 'placid', 'polite', 'proud', 'quiet',
  'rapid', 'serene', 'sharp', 'shy', 'silent', 'sleek', 'solid', 'steady', 'stoic', 'sunny',
  'swift', 'tender', 'tidy', 'upbeat', 'vivid', 'warm', 'wise', 'witty', 'young', 'zealous',
];

// People whose work made storage and file systems what they are, and other scientists.
const SURNAMES = [
  'agnesi', 'babbage', 'backus', 'bayer', 'bell', 'bohr', 'boole', 'cerf', 'codd', 'conway',
  'curie', 'dijkstra', 'easley', 'einstein', 'euler', 'faraday', 'fermi', 'feynman', 'gauss', 'goldberg',
  'hamming', 'hopper', 'huffman', 'jackson', 'johnson', 'kahn', 'kepler', 'knuth', 'lamport', 'liskov',
  'lovelace', 'mccarthy', 'meitner', 'mirzakhani', 'morse', 'napier', 'neumann', 'noether', 'pascal', 'perlman',
  'ritchie', 'shannon', 'shaw', 'somerville', 'stonebraker', 'tesla', 'thompson', 'torvalds', 'turing', 'wozniak',
];

/** A random name; `attempt` > 0 appends a digit, as Docker does when a name was taken. */
export function randomName(attempt = 0): string {
  const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
  return attempt > 0 ? `${name}${randomInt(10)}` : name;
}
