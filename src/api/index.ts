/** Public face of src/api. */
export {};
