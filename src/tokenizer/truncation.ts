/**
 * How many tokens of each segment survive 'longest_first' truncation to `budget` tokens (the
 * maximum length minus the special tokens), as the Rust `tokenizers` crate computes it: if the
 * shorter segment fits in what the longer leaves, only the longer is cut; otherwise both get half,
 * the longer one taking the odd token.
 */
export function longestFirstLengths(lengthA: number, lengthB: number, budget: number): [number, number] {
  if (lengthA + lengthB <= budget) return [lengthA, lengthB];
  const swap = lengthA > lengthB;
  let short = swap ? lengthB : lengthA;
  let long = swap ? lengthA : lengthB;
  long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  return swap ? [long, short] : [short, long];
}
