/** Docker reference parsing for the CLI's messages (the engine's own parser, re-exported). */
export { parseNormalizedNamed, withDefaultTag, familiarString, type Reference } from '../images/reference.js';
