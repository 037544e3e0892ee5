/** Public face of src/sync. */
export {};
