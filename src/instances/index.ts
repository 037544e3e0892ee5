/** Public face of src/instances. */
export {};
