/** Public face of src/changes. */
export {};
