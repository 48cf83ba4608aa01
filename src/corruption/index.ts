// The public face of src/corruption, as `import ... from './src/corruption'` (notebooks, the CLI, analyses).
// Code that must not load TF.js (experiment specs in the grid's parent) imports ./spec directly.
export * from './spec';
export * from './apply';
